/**
 * Verified bytes stay verified: a PUT (or a part PUT) that was already streaming when `complete` ran lands
 * afterwards, and must change nothing a consumer reads. The slow client opens the connection, sends part of the
 * body, waits while the upload is completed, then sends the rest.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { getReadyUpload } from "../../src/db/uploads";
import worker from "../../src/index";
import { runScheduled } from "../../src/scheduled";
import { emulator, putPodBackend, relayTransfers } from "../emulators/pod/harness";
import { ADMIN, newAccount } from "../helpers/api";
import { stepUntil } from "../helpers/job-object";
import { pngBytes, sha256Hex, wavBytes } from "../helpers/media";
import { expectProblem } from "../helpers/security";

const MiB = 1024 * 1024;
/** Small multipart settings so the WAV below has three parts. */
const MULTIPART = { MULTIPART_THRESHOLD_BYTES: String(5 * MiB), MULTIPART_PART_BYTES: String(5 * MiB) };

/** Calls the Worker with extra vars layered over the test env; `init.body` may be a stream that is still being sent. */
async function call(path: string, init: RequestInit = {}, vars: Record<string, string> = {}): Promise<Response> {
	const ctx = createExecutionContext();
	const url = path.startsWith("http") ? path : `http://reelgate.test${path}`;
	const res = await worker.fetch(new Request(url, init), { ...env, ...vars } as Env, ctx);
	await waitOnExecutionContext(ctx);
	return res;
}

/**
 * A request body that sends its first `head` bytes, then waits for `release()` before sending the rest. `reading`
 * resolves once the server has taken the first bytes, i.e. once it is past every check made before streaming.
 */
function slowBody(bytes: Uint8Array, head: number) {
	let release = () => {};
	const released = new Promise<void>((resolve) => {
		release = resolve;
	});
	let started = () => {};
	const reading = new Promise<void>((resolve) => {
		started = resolve;
	});
	let pulls = 0;
	const stream = new ReadableStream<Uint8Array>(
		{
			async pull(controller) {
				pulls += 1;
				if (pulls === 1) {
					controller.enqueue(bytes.slice(0, head));
					started();
					return;
				}
				await released;
				controller.enqueue(bytes.slice(head));
				controller.close();
			},
		},
		// Pulled only when the server reads, so `reading` means the server really is streaming.
		{ highWaterMark: 0 },
	);
	return { stream, reading, release };
}

interface Created {
	id: string;
	upload?: { url: string; headers: Record<string, string> };
	multipart?: {
		part_size: number;
		parts: { part_number: number; size: number; url: string; headers: Record<string, string> }[];
	};
}

let auth: Record<string, string>;
beforeAll(async () => {
	auth = await newAccount("race");
});

async function create(body: Record<string, unknown>, vars: Record<string, string> = {}): Promise<Created> {
	const res = await call("/v1/uploads", { method: "POST", headers: auth, body: JSON.stringify(body) }, vars);
	expect(res.status).toBe(201);
	return (await res.json()) as Created;
}

const complete = (id: string, vars: Record<string, string> = {}) =>
	call(`/v1/uploads/${id}/complete`, { method: "POST", headers: auth }, vars);

/** A wan2.2-i2v job of the upload `image` on the comfy-race backend (accepted: 202); its id. */
async function comfyJob(image: string): Promise<string> {
	const res = await call("/v1/jobs", {
		method: "POST",
		headers: auth,
		body: JSON.stringify({
			model: "wan2.2-i2v",
			backend: "comfy-race",
			input: { image, prompt: "a fox", duration_s: 2 },
		}),
	});
	expect(res.status).toBe(202);
	return ((await res.json()) as { id: string }).id;
}

/** The bytes every consumer of the upload reads (jobs, the comfyui adapter, dedup): where its row points. */
async function verifiedBytes(account: string, id: string): Promise<Uint8Array> {
	const ready = await getReadyUpload(env.DB, account, id);
	const object = await env.BUCKET.get(ready?.object_key ?? "");
	if (!object || !("body" in object)) throw new Error("no verified object");
	return new Uint8Array(await object.arrayBuffer());
}

describe("a PUT racing complete (Worker-signed URLs)", () => {
	it("single PUT: the late bytes are refused, and a job runs on the verified ones", async () => {
		const good = pngBytes(2, 2, [255, 0, 0]);
		const evil = pngBytes(2, 2, [0, 0, 255]);
		expect(evil.length).toBe(good.length);
		const created = await create({ filename: "a.png", content_type: "image/png", size: good.length });
		const target = created.upload;
		if (!target) throw new Error("no upload URL");
		const headers = { ...target.headers, "content-length": String(good.length) };
		expect((await call(target.url, { method: "PUT", headers, body: good })).status).toBe(200);

		const slow = slowBody(evil, 10);
		const late = call(target.url, { method: "PUT", headers, body: slow.stream, duplex: "half" } as RequestInit);
		await slow.reading;
		const done = await complete(created.id);
		expect(done.status).toBe(200);
		const ready = (await done.json()) as { status: string; sha256: string };
		expect(ready).toMatchObject({ status: "ready", sha256: await sha256Hex(good) });
		slow.release();
		const { detail } = await expectProblem(await late, 409, "conflict");
		expect(detail).toMatch(/not kept/);

		expect(await verifiedBytes("race", created.id)).toEqual(good);
		const again = (await (await call(`/v1/uploads/${created.id}`, { headers: auth })).json()) as { sha256: string };
		expect(again.sha256).toBe(await sha256Hex(good));

		// A job made from it: the comfyui adapter hands ComfyUI exactly the verified bytes.
		const comfy = inject("comfyEmulator");
		const backend = await call("/v1/admin/backends/comfy-race", {
			method: "PUT",
			headers: ADMIN,
			body: JSON.stringify({
				kind: "comfyui",
				price_per_second_usd: 0.0002,
				config: { url: comfy.url, token: comfy.token, timeout_ms: 1000 },
			}),
		});
		expect(backend.status).toBe(200);
		const jobId = await comfyJob(created.id);
		const job = await stepUntil(jobId, (j) => j.status === "succeeded" || j.status === "failed");
		expect(job.status).toBe("succeeded");
		const seen = await fetch(`${comfy.url}/view?type=input&filename=${jobId}-image.png`, {
			headers: { authorization: `Bearer ${comfy.token}` },
		});
		expect(seen.status).toBe(200);
		expect(new Uint8Array(await seen.arrayBuffer())).toEqual(good);

		// A job on the GPU worker (pod mode): its input carries the verified sha256, and its signed GET serves them.
		expect((await putPodBackend("pod-race")).status).toBe(200);
		const podRes = await call("/v1/jobs", {
			method: "POST",
			headers: auth,
			body: JSON.stringify({ model: "preview", backend: "pod-race", input: { image: created.id, prompt: "a fox" } }),
		});
		expect(podRes.status).toBe(202);
		const podJob = ((await podRes.json()) as { id: string }).id;
		const running = await stepUntil(podJob, (j) => j.status === "running");
		const info = (await (await emulator(`/_control/jobs/${running.remote_id}`)).json()) as {
			input: { inputs: { image: { url: string; sha256?: string } } };
		};
		expect(info.input.inputs.image.sha256).toBe(await sha256Hex(good));
		const fetched = await call(info.input.inputs.image.url);
		expect(new Uint8Array(await fetched.arrayBuffer())).toEqual(good);
		await relayTransfers(running.remote_id ?? "");
		expect((await stepUntil(podJob, (j) => j.status === "succeeded")).status).toBe("succeeded");
	});

	it("multipart: a part still streaming when complete assembles the upload is refused; the verified bytes stand", async () => {
		const good = wavBytes({ seconds: 60, sampleRate: 48000, channels: 2 });
		const created = await create(
			{ filename: "long.wav", content_type: "audio/wav", size: good.length, sha256: await sha256Hex(good) },
			MULTIPART,
		);
		const mp = created.multipart;
		if (!mp) throw new Error("no multipart");
		for (const p of mp.parts) {
			const bytes = good.slice((p.part_number - 1) * mp.part_size, (p.part_number - 1) * mp.part_size + p.size);
			const headers = { ...p.headers, "content-length": String(p.size) };
			expect((await call(p.url, { method: "PUT", headers, body: bytes }, MULTIPART)).status).toBe(200);
		}
		const second = mp.parts[1];
		if (!second) throw new Error("no part 2");
		const evil = new Uint8Array(second.size).fill(7);
		const slow = slowBody(evil, 1024);
		const late = call(
			second.url,
			{
				method: "PUT",
				headers: { ...second.headers, "content-length": String(second.size) },
				body: slow.stream,
				duplex: "half",
			} as RequestInit,
			MULTIPART,
		);
		await slow.reading;
		const done = await complete(created.id, MULTIPART);
		expect(done.status).toBe(200);
		expect(((await done.json()) as { sha256: string }).sha256).toBe(await sha256Hex(good));
		slow.release();
		await expectProblem(await late, 409, "conflict");
		expect(await sha256Hex(await verifiedBytes("race", created.id))).toBe(await sha256Hex(good));
	});
});

describe("job inputs are read only as verified", () => {
	it("a job whose input's stored bytes were changed behind the API fails with input_changed", async () => {
		const good = pngBytes(2, 2, [0, 255, 0]);
		const created = await create({ filename: "b.png", content_type: "image/png", size: good.length });
		const target = created.upload;
		if (!target) throw new Error("no upload URL");
		const headers = { ...target.headers, "content-length": String(good.length) };
		expect((await call(target.url, { method: "PUT", headers, body: good })).status).toBe(200);
		expect((await complete(created.id)).status).toBe(200);
		const jobId = await comfyJob(created.id);
		// Storage changed by something other than the API (an operator's tool, a bug): the job must not use it.
		const ready = await getReadyUpload(env.DB, "race", created.id);
		await env.BUCKET.put(ready?.object_key ?? "", pngBytes(2, 2, [9, 9, 9]));
		const job = await stepUntil(jobId, (j) => j.status === "succeeded" || j.status === "failed");
		expect(job.status).toBe("failed");
		expect(job.error?.code).toBe("input_changed");
		expect(job.error?.message).toMatch(/^inputs\.image: /);
		expect(job.error?.message).not.toMatch(/verified\/|uploads\//);
	});
});

describe("late writes are cleared once the upload's URLs are dead", () => {
	async function readyUpload(name: string, bytes: Uint8Array): Promise<string> {
		const created = await create({ filename: name, content_type: "image/png", size: bytes.length });
		const target = created.upload;
		if (!target) throw new Error("no upload URL");
		const headers = { ...target.headers, "content-length": String(bytes.length) };
		expect((await call(target.url, { method: "PUT", headers, body: bytes })).status).toBe(200);
		expect((await complete(created.id)).status).toBe(200);
		return created.id;
	}

	it("the cron deletes bytes a presigned PUT left at the upload's own key, once, and keeps the verified copy", async () => {
		const good = pngBytes(2, 2, [1, 2, 3]);
		const id = await readyUpload("late.png", good);
		// What an R2 presigned PUT still streaming at `complete` leaves behind: bytes at the URL's key.
		const own = `uploads/race/${id}`;
		await env.BUCKET.put(own, pngBytes(2, 2, [3, 2, 1]));
		// An upload verified before pinning reads its own key: the sweep must leave it alone.
		const legacy = await readyUpload("legacy.png", good);
		const legacyKey = `uploads/race/${legacy}`;
		await env.BUCKET.put(legacyKey, good);
		await env.DB.prepare("UPDATE uploads SET object_key = ? WHERE id = ?").bind(legacyKey, legacy).run();

		const past = new Date(Date.now() - 2 * 3600_000).toISOString();
		await env.DB.prepare("UPDATE uploads SET expires_at = ? WHERE id IN (?, ?)").bind(past, id, legacy).run();
		await runScheduled(env, Date.now());

		expect(await env.BUCKET.head(own)).toBeNull();
		expect(await verifiedBytes("race", id)).toEqual(good);
		expect(await env.BUCKET.head(legacyKey)).not.toBeNull();
		const swept = await env.DB.prepare("SELECT upload_key_swept_at FROM uploads WHERE id = ?")
			.bind(id)
			.first<{ upload_key_swept_at: string | null }>();
		expect(swept?.upload_key_swept_at).toBeTruthy();
	});
});
