import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import type { JobRecord } from "../../src/jobs/record";
import { jobVideoKey } from "../../src/storage";
import { prompt } from "../emulators/pod/harness";
import {
	deliverWebhooks,
	putRunpodBackend,
	relayRunpod,
	rpAdvance,
	rpControl,
	rpJob,
	runpod,
} from "../emulators/runpod/harness";
import { ADMIN, call, newAccount, PNG, upload } from "../helpers/api";
import { history, record, stepUntil, stub } from "../helpers/job-object";

const BACKEND = "rp-main";
let auth: Record<string, string>;
let image: string;

beforeAll(async () => {
	expect((await putRunpodBackend(BACKEND)).status).toBe(200);
	auth = await newAccount("runpod");
	image = await upload(auth, PNG, "image/png", "fox.png");
});

async function startJob(text: string, backend = BACKEND): Promise<string> {
	const res = await call("/v1/jobs", {
		method: "POST",
		headers: auth,
		body: JSON.stringify({ model: "preview", backend, input: { image, prompt: text } }),
	});
	expect(res.status).toBe(202);
	return ((await res.json()) as { id: string }).id;
}

/** Polls (steps the alarm) to success, relaying the transfers when the emulated worker asks for them. */
async function pollToEnd(jobId: string): Promise<JobRecord> {
	const running = await stepUntil(jobId, (j) => j.status !== "queued" || j.progress.stage === "downloading");
	if (running.status === "running" && (await rpJob(running.remote_id ?? "")).awaiting_transfers) {
		await relayRunpod(running.remote_id ?? "");
	}
	return stepUntil(jobId, (j) => j.status !== "running" && j.status !== "queued");
}

describe("runpod backend: admin API", () => {
	it("never returns the api key and reports health from /health", async () => {
		const list = await call("/v1/admin/backends", { headers: ADMIN });
		const text = await list.text();
		expect(text).not.toContain(runpod().apiKey);
		expect(text).toContain('"api_key_set":true');
		const test = await call(`/v1/admin/backends/${BACKEND}/test`, { method: "POST", headers: ADMIN });
		expect(test.status).toBe(200);
		const health = (await test.json()) as { reachable: boolean; details: Record<string, unknown> };
		expect(health.reachable).toBe(true);
		expect(health.details).toMatchObject({ queue_depth: expect.any(Number), workers: expect.any(Object) });
	});

	it("a refused key shows as unreachable with a clear reason", async () => {
		expect((await putRunpodBackend("rp-badkey", { config: { api_key: "wrong" } })).status).toBe(200);
		const test = await call("/v1/admin/backends/rp-badkey/test", { method: "POST", headers: ADMIN });
		const health = (await test.json()) as { reachable: boolean; details: { error?: string } };
		expect(health.reachable).toBe(false);
		expect(health.details.error).toMatch(/API key/);
	});
});

describe("runpod backend: polling", () => {
	it("submits with webhook and policy, polls to success, and prices executionTime", async () => {
		const id = await startJob(prompt());
		const job = await pollToEnd(id);
		expect(job.status).toBe("succeeded");
		expect(job.attempts).toBe(1);
		expect(job.cost).toEqual({ gpu_seconds: 5.4, usd: Math.round(5.4 * 0.00044 * 1e6) / 1e6, backend_delay_s: 1.2 });
		const remote = await rpJob(job.remote_id ?? "");
		expect(remote.policy).toEqual({ executionTimeout: 1_800_000, ttl: 7_200_000 });
		expect(remote.webhook).toMatch(new RegExp(`^http://reelgate.test/v1/internal/runpod/${id}\\?token=.+`));
	});

	it("stores an inline video_base64 in R2 and verifies it", async () => {
		const id = await startJob(prompt("inline"));
		const job = await stepUntil(id, (j) => j.status === "succeeded" || j.status === "failed");
		expect(job.status).toBe("succeeded");
		const emuVideo = new Uint8Array(await (await rpControl(`/jobs/${job.remote_id}/video`)).arrayBuffer());
		const stored = await env.BUCKET.get(jobVideoKey(job));
		if (!stored) throw new Error("no video stored");
		expect(new Uint8Array(await stored.arrayBuffer())).toEqual(emuVideo);
		expect(job.output?.video.size).toBe(emuVideo.byteLength);
	});

	it.each([
		["FAILED with an error", "fail=out_of_memory", "inference_failed", /out_of_memory/],
		["FAILED from an uncaught exception", "crash", "inference_failed", /^CUDA out of memory$/],
		["TIMED_OUT", "timedout", "timeout", /timed the job out/],
		["COMPLETED without output", "nooutput", "output_missing", /without reporting/],
	])("%s fails the job with a clear error", async (_n, directive, code, message) => {
		const id = await startJob(prompt(directive));
		const job = await stepUntil(id, (j) => j.status === "failed" || j.status === "succeeded");
		expect(job.status).toBe("failed");
		expect(job.error?.code).toBe(code);
		expect(job.error?.message).toMatch(message);
		expect(job.error?.message).not.toContain("Traceback");
	});

	it("a job that vanishes (404 on /status) is resubmitted and succeeds", async () => {
		const id = await startJob(prompt("vanish"));
		const job = await pollToEnd(id);
		expect(job.status).toBe("succeeded");
		expect(job.attempts).toBe(2);
	});

	it.each([
		["503 on /run", "run=503*2"],
		["502 on /status", "status=502*2"],
		["a /run that never answers", "run=timeout"],
		["a slow start", "slow=3"],
	])("%s is retried, then the job succeeds", async (_n, directive) => {
		const id = await startJob(prompt(directive));
		const job = await pollToEnd(id);
		expect(job.status).toBe("succeeded");
		expect(job.attempts).toBe(1);
	});

	it("429 with Retry-After waits at least that long", async () => {
		const id = await startJob(prompt("status=429", "retry-after=20"));
		await stepUntil(id, (j) => j.remote_id !== null);
		const before = Date.now();
		const job = await stepUntil(id, (j) => j.transient_failures > 0);
		expect(job.next_at ?? 0).toBeGreaterThanOrEqual(before + 19_000);
	});

	it("401 from RunPod fails the job with a clear error, without retrying", async () => {
		const id = await startJob(prompt("run=401"));
		const job = await stepUntil(id, (j) => j.status === "failed");
		expect(job.error).toMatchObject({ code: "backend_error" });
		expect(job.error?.message).toMatch(/refused the API key/);
		expect(job.attempts).toBe(0);
	});

	it("a client cancel cancels the RunPod job", async () => {
		const id = await startJob(prompt("slow=5"));
		const queued = await stepUntil(id, (j) => j.remote_id !== null);
		const res = await call(`/v1/jobs/${id}/cancel`, { method: "POST", headers: auth });
		expect(res.status).toBe(200);
		expect((await rpJob(queued.remote_id ?? "")).status).toBe("CANCELLED");
	});
});

/** Waits for success until `untilMs`, running the job's alarm whenever it is due. */
async function untilSucceeded(id: string, untilMs: number): Promise<JobRecord> {
	let job = await record(id);
	while (job.status !== "succeeded" && Date.now() < untilMs) {
		const alarm = await runInDurableObject(stub(id), (_i, state) => state.storage.getAlarm());
		if (alarm !== null && alarm <= Date.now()) await runDurableObjectAlarm(stub(id));
		else await new Promise((r) => setTimeout(r, 20));
		job = await record(id);
	}
	return job;
}

describe("runpod backend: webhooks", () => {
	/** Submits a job whose emulated worker only moves when told (`manual`), then runs it to COMPLETED remotely. */
	async function completeRemotely(text: string): Promise<{ id: string; remoteId: string; statusCalls: number }> {
		const id = await startJob(text);
		const submitted = await stepUntil(id, (j) => j.remote_id !== null);
		const remoteId = submitted.remote_id ?? "";
		expect(await rpAdvance(remoteId)).toBe("IN_PROGRESS");
		await relayRunpod(remoteId);
		await rpAdvance(remoteId);
		expect(await rpAdvance(remoteId)).toBe("COMPLETED");
		return { id, remoteId, statusCalls: (await rpJob(remoteId)).statusCalls };
	}

	it("a webhook makes the job confirm with /status at once and succeed", async () => {
		const { id, remoteId, statusCalls } = await completeRemotely(prompt("manual"));
		const before = await record(id);
		expect(before.status).toBe("queued");
		expect(before.next_at ?? 0).toBeGreaterThan(Date.now() + 500);
		const delivered = await deliverWebhooks(id);
		expect(delivered).toEqual([{ url: expect.stringContaining(`/v1/internal/runpod/${id}?token=`), status: 200 }]);
		// The poke set the alarm to now: the job succeeds before its next scheduled poll was due (the platform may
		// run the due alarm by itself; otherwise the test runs it).
		const done = await untilSucceeded(id, before.next_at ?? 0);
		expect(done.status).toBe("succeeded");
		expect(Date.parse(done.completed_at ?? "")).toBeLessThan(before.next_at ?? 0);
		expect((await rpJob(remoteId)).statusCalls).toBe(statusCalls + 1);
	});

	it("a webhook sent twice is harmless: the job succeeds once", async () => {
		const { id } = await completeRemotely(prompt("manual", "webhook=twice"));
		const delivered = await deliverWebhooks(id);
		expect(delivered.map((d) => d.status)).toEqual([200, 200]);
		const done = await untilSucceeded(id, Date.now() + 5000);
		expect(done.status).toBe("succeeded");
		const events = (await history(id)).filter((h) => h.event === "succeeded");
		expect(events).toHaveLength(1);
	});

	it("a lost webhook is covered by polling", async () => {
		const { id } = await completeRemotely(prompt("manual", "webhook=lost"));
		expect(await deliverWebhooks(id)).toEqual([]);
		const done = await stepUntil(id, (j) => j.status === "succeeded");
		expect(done.status).toBe("succeeded");
	});

	it("a webhook with a wrong token is refused with a problem and changes nothing", async () => {
		const id = await startJob(prompt("manual"));
		await stepUntil(id, (j) => j.remote_id !== null);
		const res = await call(`/v1/internal/runpod/${id}?token=forged`, { method: "POST", body: "{}" });
		expect(res.status).toBe(403);
		expect(res.headers.get("content-type")).toContain("application/problem+json");
		const missing = await call(`/v1/internal/runpod/${id}`, { method: "POST", body: "{}" });
		expect(missing.status).toBe(400);
	});
});
