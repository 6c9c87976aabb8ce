/**
 * Secrets stay secret: a whole flow (key, signed upload, jobs on a pod and a RunPod backend with webhooks, share
 * links, backend configs) runs with the console captured, and no line may carry any credential it handled.
 * Backend secrets are never answered and are sealed at rest in D1.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { app } from "../../src/index";
import { open } from "../../src/lib/secret-box";
import { emulator, prompt, relayTransfers } from "../emulators/pod/harness";
import { deliverWebhooks, putRunpodBackend, relayRunpod, rpJob, runpod } from "../emulators/runpod/harness";
import { ADMIN, call, ORIGIN, PNG, revealWebhookSecret } from "../helpers/api";
import { stepUntil } from "../helpers/job-object";
import { alarmUntil, hook, makeDeliveriesDue, startJob } from "../helpers/notify";
import { captureConsole, newKey } from "../helpers/security";

const ADMIN_TOKEN = "test-admin-token";
const sigOf = (url: string) => new URL(url).searchParams.get("sig") ?? "";

/** Every credential the flow handled, by name, and every log line written meanwhile. */
let secrets: Record<string, string>;
let lines: string[];

beforeAll(async () => {
	const console = captureConsole();
	try {
		secrets = await fullFlow();
	} finally {
		console.restore();
	}
	lines = console.lines;
});

async function fullFlow(): Promise<Record<string, string>> {
	const { key, auth } = await newKey("secrets");
	// The webhook secret, shown by its rotation before anything is signed with it.
	const whsec = await revealWebhookSecret("secrets");

	// An upload through its signed URL.
	const created = await call("/v1/uploads", {
		method: "POST",
		headers: auth,
		body: JSON.stringify({ filename: "a.png", content_type: "image/png", size: PNG.byteLength }),
	});
	const upl = (await created.json()) as { id: string; upload: { url: string; headers: Record<string, string> } };
	expect((await call(upl.upload.url, { method: "PUT", headers: upl.upload.headers, body: PNG })).status).toBe(200);
	expect((await call(`/v1/uploads/${upl.id}/complete`, { method: "POST", headers: auth })).status).toBe(200);

	// A client that cuts its PUT off mid-body: the error path logs no more of the URL than the happy one.
	const cutUpload = await call("/v1/uploads", {
		method: "POST",
		headers: auth,
		body: JSON.stringify({ filename: "cut.png", content_type: "image/png", size: PNG.byteLength }),
	});
	const cut = (await cutUpload.json()) as { upload: { url: string; headers: Record<string, string> } };
	const broken = new ReadableStream<Uint8Array>({
		start(controller) {
			controller.enqueue(PNG.slice(0, 10));
			controller.error(new Error("connection reset by peer"));
		},
	});
	const cutRes = await call(cut.upload.url, {
		method: "PUT",
		headers: { ...cut.upload.headers, "content-length": String(PNG.byteLength) },
		body: broken,
		duplex: "half",
	} as RequestInit);
	expect(cutRes.status).toBe(400);

	// A pod job with a webhook whose URL carries its own token, run to success and delivered.
	const target = hook("secrets");
	const hookUrl = `${target.url}?token=hook-url-token-5f1c`;
	const podJob = await startJob(auth, "pod-secrets", { webhook: { url: hookUrl } });
	const running = await stepUntil(podJob, (j) => j.status === "running");
	const info = (await (await emulator(`/_control/jobs/${running.remote_id}`)).json()) as {
		input: { inputs: Record<string, { url: string }>; output: { put: { url: string } } };
	};
	await relayTransfers(running.remote_id ?? "");
	await stepUntil(podJob, (j) => j.status === "succeeded");
	await makeDeliveriesDue(podJob);
	await alarmUntil(podJob, (j) => (j.deliveries ?? []).every((d) => d.status === "delivered"));
	expect(await target.received()).toHaveLength(1);

	// A RunPod job: the backend's API key, its per-job webhook token.
	expect((await putRunpodBackend("rp-secrets")).status).toBe(200);
	expect((await call("/v1/admin/backends/rp-secrets/test", { method: "POST", headers: ADMIN })).status).toBe(200);
	const image = upl.id;
	const rp = await call("/v1/jobs", {
		method: "POST",
		headers: auth,
		body: JSON.stringify({ model: "preview", backend: "rp-secrets", input: { image, prompt: prompt() } }),
	});
	const rpJobId = ((await rp.json()) as { id: string }).id;
	const rpRunning = await stepUntil(rpJobId, (j) => j.status === "running" && j.progress.stage === "downloading");
	const remote = await rpJob(rpRunning.remote_id ?? "");
	await relayRunpod(rpRunning.remote_id ?? "");
	await stepUntil(rpJobId, (j) => j.status === "succeeded");
	const delivered = await deliverWebhooks(rpJobId);
	expect(delivered.length).toBeGreaterThan(0);
	expect(delivered.every((d) => d.status === 200)).toBe(true);

	// A share link, made and played; the webhook secret read; a refused admin call.
	const share = (await (await call(`/v1/jobs/${podJob}/share`, { method: "POST", headers: auth })).json()) as {
		url: string;
	};
	expect((await call(share.url)).status).toBe(200);
	expect((await call("/v1/admin/keys", { headers: { authorization: `Bearer ${ADMIN_TOKEN}x` } })).status).toBe(401);
	expect((await call("/v1/jobs", { headers: { authorization: `Bearer ${key}x` } })).status).toBe(401);

	return {
		"API key": key,
		"admin token": ADMIN_TOKEN,
		"webhook secret": whsec,
		"webhook secret body": whsec.replace(/^whsec_/, ""),
		"upload URL signature": sigOf(upl.upload.url),
		"cut upload URL signature": sigOf(cut.upload.url),
		"backend input URL signature": sigOf(info.input.inputs.image?.url ?? ""),
		"backend output URL signature": sigOf(info.input.output.put.url),
		"RunPod input URL signature": sigOf(remote.input.inputs.image?.url ?? ""),
		"RunPod webhook token": new URL(remote.webhook ?? "").searchParams.get("token") ?? "",
		"share link signature": sigOf(share.url),
		"webhook URL token": "hook-url-token-5f1c",
		"pod backend token": "pod-emulator-token",
		"RunPod API key": runpod().apiKey,
	};
}

describe("no secret is logged", () => {
	it("the capture saw the whole flow, Worker and Durable Objects alike", () => {
		const events = lines.map((l) => (JSON.parse(l.slice(l.indexOf("{"))) as { event?: string }).event);
		expect(events).toEqual(
			expect.arrayContaining(["request", "job_created", "job_finished", "webhook_attempt", "runpod_webhook"]),
		);
		for (const [name, value] of Object.entries(secrets)) expect(value.length, name).toBeGreaterThanOrEqual(12);
	});

	it("no line carries any credential the flow handled", () => {
		const leaks: string[] = [];
		for (const line of lines) {
			for (const [name, value] of Object.entries(secrets)) if (line.includes(value)) leaks.push(`${name}: ${line}`);
		}
		expect(leaks).toEqual([]);
	});

	it("no line carries a signed query at all (sig=, token=, X-Amz-Signature) or a whsec_ secret", () => {
		const joined = lines.join("\n");
		expect(joined).not.toMatch(/[?&](sig|token|exp|X-Amz-Signature|X-Amz-Credential)=/i);
		expect(joined).not.toContain("whsec_");
		expect(joined).not.toMatch(/rg_live_/);
	});
});

describe("R2 presigned URLs", () => {
	it("an upload signed by the R2 presigner logs neither its X-Amz-Signature nor the R2 secret", async () => {
		const r2 = {
			R2_ACCOUNT_ID: "acct0123456789",
			R2_ACCESS_KEY_ID: "AKIDR2ACCESS0123",
			R2_SECRET_ACCESS_KEY: "r2-secret-access-key-9f8e7d6c",
			R2_BUCKET: "reelgate-media",
		};
		const { auth } = await newKey("r2-presigned");
		const capture = captureConsole();
		let url: string;
		try {
			const ctx = createExecutionContext();
			const res = await app.fetch(
				new Request(`${ORIGIN}/v1/uploads`, {
					method: "POST",
					headers: auth,
					body: JSON.stringify({ filename: "a.png", content_type: "image/png", size: PNG.byteLength }),
				}),
				{ ...env, ...r2 },
				ctx,
			);
			await waitOnExecutionContext(ctx);
			expect(res.status).toBe(201);
			url = ((await res.json()) as { upload: { url: string } }).upload.url;
		} finally {
			capture.restore();
		}
		const signature = new URL(url).searchParams.get("X-Amz-Signature") ?? "";
		expect(signature).toMatch(/^[0-9a-f]{64}$/);
		expect(capture.lines.length).toBeGreaterThan(0);
		const joined = capture.lines.join("\n");
		for (const secret of [signature, r2.R2_SECRET_ACCESS_KEY, "X-Amz-"]) expect(joined).not.toContain(secret);
	});
});

describe("backend secrets", () => {
	const KINDS: [string, Record<string, unknown>, string][] = [
		["pod", { url: "http://127.0.0.1:9", token: "pod-token-0a9b8c7d6e" }, "pod-token-0a9b8c7d6e"],
		["comfyui", { url: "http://127.0.0.1:9", token: "comfy-token-1b2c3d4e5f" }, "comfy-token-1b2c3d4e5f"],
		[
			"runpod",
			{ endpoint_id: "ep1", api_key: "rp-key-2c3d4e5f6a", base_url: "http://127.0.0.1:9" },
			"rp-key-2c3d4e5f6a",
		],
		["vastai", { api_key: "vast-key-3d4e5f6a7b", base_url: "http://127.0.0.1:9" }, "vast-key-3d4e5f6a7b"],
	];

	it.each(KINDS)(
		"%s: never answered (save, list, test), sealed in D1 and opening to the value",
		async (kind, config, secret) => {
			const name = `sec-${kind}`;
			const saved = await call(`/v1/admin/backends/${name}`, {
				method: "PUT",
				headers: ADMIN,
				body: JSON.stringify({ kind, config }),
			});
			expect(saved.status).toBe(200);
			const answers = [
				await saved.text(),
				await (await call("/v1/admin/backends", { headers: ADMIN })).text(),
				await (await call(`/v1/admin/backends/${name}/test`, { method: "POST", headers: ADMIN })).text(),
			];
			for (const text of answers) expect(text).not.toContain(secret);
			expect(answers[0]).toMatch(/_set":true/);

			const row = await env.DB.prepare("SELECT * FROM backends WHERE name = ?")
				.bind(name)
				.first<Record<string, unknown>>();
			expect(row).not.toBeNull();
			expect(JSON.stringify(row)).not.toContain(secret);
			const sealed = String(row?.secrets);
			expect(sealed).toMatch(/^v1\.[A-Za-z0-9+/=]+\.[A-Za-z0-9+/=]+$/);
			expect(await open(env.BACKEND_SECRETS_KEY, sealed)).toContain(secret);
		},
	);

	it("account secrets (webhook, share) are sealed at rest too", async () => {
		await newKey("sealed");
		const whsec = await revealWebhookSecret("sealed");
		const rows = await env.DB.prepare("SELECT * FROM account_secrets").all<Record<string, unknown>>();
		expect(rows.results.length).toBeGreaterThan(0);
		expect(JSON.stringify(rows.results)).not.toContain(whsec.replace(/^whsec_/, ""));
	});
});
