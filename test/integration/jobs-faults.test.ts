import { abortAllDurableObjects, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import type { JobDO } from "../../durable-objects/job/job-do";
import type { JobRecord } from "../../src/jobs/record";
import { emulator, prompt, putPodBackend, relayTransfers } from "../emulators/pod/harness";
import { call, newAccount, PNG, upload } from "../helpers/api";
import { history, record, stepUntil, stub } from "../helpers/job-object";

let auth: Record<string, string>;
let image: string;

beforeAll(async () => {
	expect((await putPodBackend("pod-faults")).status).toBe(200);
	auth = await newAccount("faults");
	image = await upload(auth, PNG, "image/png", "fox.png");
});

async function startJob(text: string): Promise<string> {
	const res = await call("/v1/jobs", {
		method: "POST",
		headers: auth,
		body: JSON.stringify({ model: "preview", input: { image, prompt: text } }),
	});
	expect(res.status).toBe(202);
	return ((await res.json()) as { id: string }).id;
}

/** Steps a job to success, relaying its transfers when the emulator asks for them. */
async function runToSuccess(jobId: string): Promise<JobRecord> {
	const running = await stepUntil(jobId, (j) => j.status === "running" || j.status === "failed");
	if (running.status !== "running") return running;
	await relayTransfers(running.remote_id ?? "");
	return stepUntil(jobId, (j) => j.status !== "running");
}

describe.each([
	["503 on /run", "run=503*2"],
	["500 on /run", "run=500"],
	["a /run that never answers", "run=timeout"],
	["502 on /status", "status=502*2"],
	["a /status that never answers", "status=timeout"],
])("a transient fault (%s)", (_name, directive) => {
	it("is retried with backoff, then the job succeeds", async () => {
		const id = await startJob(prompt(directive));
		const done = await runToSuccess(id);
		expect(done.status).toBe("succeeded");
		expect(done.attempts).toBe(1);
		const events = (await history(id)).map((h) => h.event);
		expect(events).toContain("retry");
	});
});

describe("429 with Retry-After", () => {
	it("waits at least what the backend asked before retrying", async () => {
		const id = await startJob(prompt("status=429", "retry-after=30"));
		// Past the submission first: the creation alarm is due at once, so the platform may run it by itself too.
		await stepUntil(id, (j) => j.remote_id !== null);
		const before = Date.now();
		const job = await stepUntil(id, (j) => j.transient_failures > 0);
		expect(job.status).toBe("queued");
		expect(job.next_at ?? 0).toBeGreaterThanOrEqual(before + 29_000);
		const armed = await runInDurableObject(stub(id), (_i, state) => state.storage.getAlarm());
		expect(armed).toBe(job.next_at);
		expect((await runToSuccess(id)).status).toBe("succeeded");
	});
});

describe("permanent failures", () => {
	it("a 400 on /run fails the job with a clear error", async () => {
		const id = await startJob(prompt("run=400"));
		const job = await stepUntil(id, (j) => j.status === "failed");
		expect(job.error).toEqual({ code: "backend_error", message: "Submit: the backend answered HTTP 400." });
		expect(job.completed_at).not.toBeNull();
	});

	it("a FAILED job carries the worker's error code and message", async () => {
		const id = await startJob(prompt("fail=models_missing"));
		const job = await stepUntil(id, (j) => j.status === "failed");
		expect(job.error).toEqual({ code: "models_missing", message: "Injected failure: models_missing." });
		const view = (await (await call(`/v1/jobs/${id}`, { headers: auth })).json()) as { error: unknown };
		expect(view.error).toEqual(job.error);
		const video = await call(`/v1/jobs/${id}/video`, { headers: auth });
		expect(video.status).toBe(409);
		expect(((await video.json()) as { code: string }).code).toBe("not_ready");
	});

	it("a wrong sha256 from the worker fails with output_verification_failed", async () => {
		const id = await startJob(prompt("badsha"));
		const job = await runToSuccess(id);
		expect(job.status).toBe("failed");
		expect(job.error?.code).toBe("output_verification_failed");
	});

	it("an upload the worker could not make is resubmitted, then fails with output_upload_failed", async () => {
		const id = await startJob(prompt());
		// Each submission's worker reports its PUT refused: the job goes out again with fresh URLs until its
		// attempts are spent.
		const seen = new Set<string>();
		for (let attempt = 1; attempt <= 3; attempt++) {
			const running = await stepUntil(
				id,
				(j) => j.status === "running" && j.remote_id !== null && !seen.has(j.remote_id),
				20,
			);
			seen.add(running.remote_id ?? "");
			await emulator(`/_control/jobs/${running.remote_id}/relayed`, {
				method: "POST",
				body: JSON.stringify({ downloads: { image: { status: 200 } }, upload: { status: 403 } }),
			});
		}
		const job = await stepUntil(id, (j) => j.status === "failed", 20);
		expect(job.error?.code).toBe("output_upload_failed");
		expect(job.attempts).toBe(3);
		// Each run reported 0.8 s of GPU time before its PUT failed; all three were billed, so all three count (and
		// the 120 ms each waited at the backend).
		expect(job.cost).toEqual({ gpu_seconds: 2.4, usd: 0.0012, backend_delay_s: 0.36 });
		expect((await history(id)).filter((h) => h.event === "transfer_failed")).toHaveLength(2);
	});
});

describe("a job the backend loses (404 on /status)", () => {
	it("is resubmitted once, counting an attempt, then succeeds", async () => {
		const id = await startJob(prompt("vanish"));
		const done = await runToSuccess(id);
		expect(done.status).toBe("succeeded");
		expect(done.attempts).toBe(2);
		expect((await history(id)).map((h) => h.event)).toEqual(
			expect.arrayContaining(["submitted", "lost", "submitted", "succeeded"]),
		);
	});

	it("gives the resubmission a video key of its own: the lost run can no longer write, its object is swept", async () => {
		const text = prompt("vanish");
		const id = await startJob(text);
		const second = await stepUntil(id, (j) => j.attempts === 2);
		const { runs } = (await (await emulator(`/_control/runs?prompt=${encodeURIComponent(text)}`)).json()) as {
			runs: { id: string; input: { output: { put: { url: string; headers: Record<string, string> } } } }[];
		};
		expect(runs.map((r) => r.id)).toEqual([expect.any(String), second.remote_id]);
		// The lost run comes back to life and PUTs to the URL it was given: refused, nothing stored there.
		const lost = runs[0];
		if (!lost) throw new Error("the emulator saw no run");
		const lostKey = decodeURIComponent(new URL(lost.input.output.put.url).pathname.replace(/^\/v1\/storage\//, ""));
		expect(lostKey).toMatch(new RegExp(`^outputs/[^/]+/${id}/att_\\d+/video\\.mp4$`));
		expect(lostKey).not.toBe(second.output_key);
		const late = await call(lost.input.output.put.url, {
			method: "PUT",
			headers: lost.input.output.put.headers,
			body: new Uint8Array(64),
		});
		expect(late.status).toBe(409);
		expect(await env.BUCKET.head(lostKey)).toBeNull();
		const done = await runToSuccess(id);
		expect(done.status).toBe("succeeded");
		const served = await call(`/v1/jobs/${id}/video`, { headers: auth });
		const video = new Uint8Array(await served.arrayBuffer());
		expect(video.byteLength).toBe(done.output?.video.size);
		// Only the succeeding submission's object is left under the job.
		const left = await env.BUCKET.list({ prefix: `outputs/${done.spec.account_id}/${id}/` });
		expect(left.objects.map((o) => o.key)).toEqual([done.output_key]);
	});

	it("fails once it has used up its attempts", async () => {
		const id = await startJob(prompt("vanish*5"));
		const job = await stepUntil(id, (j) => j.status === "failed", 20);
		expect(job.error?.code).toBe("lost");
		expect(job.attempts).toBe(3);
	});
});

describe("the deadline", () => {
	it("fails a job that outlives JOB_DEADLINE_S with timeout, and cancels the remote run", async () => {
		const id = await startJob(prompt());
		const running = await stepUntil(id, (j) => j.status === "running");
		// Time travel: move the stored deadline into the past, and restart the object so it reads its row again
		// (a live object keeps the row it parsed: nothing but the object itself writes it).
		await runInDurableObject(stub(id), (_i, state) => {
			state.storage.sql.exec("UPDATE job SET deadline_at = ?", Date.now() - 1);
		});
		await evictDurableObject(stub(id));
		const job = await stepUntil(id, (j) => j.status === "failed");
		expect(job.error?.code).toBe("timeout");
		const remote = (await (await emulator(`/_control/jobs/${running.remote_id}`)).json()) as { status: string };
		expect(remote.status).toBe("CANCELLED");
	});
});

describe("restarts", () => {
	it("an evicted object resumes from storage on the next alarm", async () => {
		const id = await startJob(prompt());
		const running = await stepUntil(id, (j) => j.status === "running");
		await evictDurableObject(stub(id));
		await relayTransfers(running.remote_id ?? "");
		expect(await runDurableObjectAlarm(stub(id))).toBe(true);
		await abortAllDurableObjects();
		const done = await stepUntil(id, (j) => j.status === "succeeded");
		expect(done.remote_id).toBe(running.remote_id);
		expect(done.attempts).toBe(1);
	});
});

describe("cancel", () => {
	it("cancels a queued job", async () => {
		const id = await startJob(prompt("run=503*50"));
		const res = await call(`/v1/jobs/${id}/cancel`, { method: "POST", headers: auth });
		expect(res.status).toBe(200);
		expect(((await res.json()) as { status: string }).status).toBe("canceled");
		expect(await runDurableObjectAlarm(stub(id))).toBe(false);
	});

	it("cancels a running job and its remote run; a second cancel is 409", async () => {
		const id = await startJob(prompt());
		const running = await stepUntil(id, (j) => j.status === "running");
		const res = await call(`/v1/jobs/${id}/cancel`, { method: "POST", headers: auth });
		expect(res.status).toBe(200);
		const remote = (await (await emulator(`/_control/jobs/${running.remote_id}`)).json()) as { status: string };
		expect(remote.status).toBe("CANCELLED");
		const again = await call(`/v1/jobs/${id}/cancel`, { method: "POST", headers: auth });
		expect(again.status).toBe(409);
		expect(((await again.json()) as { code: string }).code).toBe("conflict");
		expect((await record(id)).status).toBe("canceled");
	});
});

describe("an unexpected error in the alarm", () => {
	it("throws for the platform to retry, and re-arms by itself on the last retry", async () => {
		expect((await putPodBackend("pod-broken", { priority: -100 })).status).toBe(200);
		const res = await call("/v1/jobs", {
			method: "POST",
			headers: auth,
			body: JSON.stringify({ model: "preview", input: { image, prompt: prompt() }, backend: "pod-broken" }),
		});
		const { id } = (await res.json()) as { id: string };
		// A corrupt row makes building the adapter throw: not a backend failure, a bug or a broken store. (The
		// platform also fires the due alarm by itself and logs the same throw as an uncaught exception: expected.)
		await env.DB.prepare("UPDATE backends SET config = '{' WHERE name = 'pod-broken'").run();
		const info = (retryCount: number) => ({ isRetry: retryCount > 0, retryCount, scheduledTime: Date.now() });
		await expect(runInDurableObject(stub(id), (instance: JobDO) => instance.alarm(info(0)))).rejects.toThrow();
		await runInDurableObject(stub(id), (instance: JobDO) => instance.alarm(info(6)));
		const armed = await runInDurableObject(stub(id), (_i, state) => state.storage.getAlarm());
		expect(armed).toBeGreaterThan(Date.now() + 30_000);
		expect((await record(id)).status).toBe("queued");
	});
});

describe("a lost alarm", () => {
	it("is set again by the next read of the live job", async () => {
		const id = await startJob(prompt("run=503*50"));
		const alarmOf = () => runInDurableObject(stub(id), (_i, state) => state.storage.getAlarm());
		// (The platform may be running the job's due step meanwhile, which re-arms on its own when it ends.)
		await runInDurableObject(stub(id), (_i, state) => state.storage.deleteAlarm());
		expect((await call(`/v1/jobs/${id}`, { headers: auth })).status).toBe(200);
		expect(await alarmOf()).not.toBeNull();
	});
});
