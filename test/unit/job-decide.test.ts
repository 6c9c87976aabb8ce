/** The job loop's decisions as data: what a job does next after each thing its backend can say. */
import { describe, expect, it } from "vitest";
import { afterFailure, afterPoll, afterSubmit, afterVerification, notAdmitted } from "../../durable-objects/job/decide";
import type { StoredJob } from "../../durable-objects/job/store";
import { MAX_ATTEMPTS } from "../../src/jobs/backoff";
import { initialState } from "../../src/jobs/state";

const created = Date.parse("2026-01-01T00:00:00.000Z");
const ctx = { now: created + 100_000, random: () => 0.5 };

function job(patch: Partial<StoredJob> = {}): StoredJob {
	return {
		...initialState(),
		spec: {
			id: "job_1",
			account_id: "acct",
			model: "preview",
			created_at: new Date(created).toISOString(),
			origin: "http://reelgate.test",
			inputs: { image: { upload_id: "upl_1", object_key: "uploads/acct/upl_1", content_type: "image/png" } },
			params: {},
			webhook: null,
			backend: { name: "pod-a", kind: "pod", price_per_second_usd: 0.001 },
			deadline_s: 3600,
		},
		updated_at: new Date(created).toISOString(),
		next_at: created,
		transient_failures: 0,
		deadline_at: created + 3_600_000,
		index_synced: true,
		...patch,
	};
}

const submitted = job({ remote_id: "r1", attempts: 1 });

describe("after a submission", () => {
	it("follows the accepted job, taking the machine's own price", () => {
		const d = afterSubmit(job({ transient_failures: 2 }), { ok: true, remoteId: "r1", pricePerSecondUsd: 0.002 }, ctx);
		expect(d).toMatchObject({
			type: "schedule",
			event: "submitted",
			delayMs: 10_000,
			job: { remote_id: "r1", attempts: 1, transient_failures: 0, spec: { backend: { price_per_second_usd: 0.002 } } },
		});
	});

	it("moves a job the backend refused outright elsewhere, failing it where no backend is left", () => {
		const d = afterSubmit(job(), { ok: false, reason: "rejected", message: "HTTP 400" }, ctx);
		expect(d).toMatchObject({
			type: "failover",
			reason: "HTTP 400",
			otherwise: { type: "finish", event: "failed", job: { error: { code: "backend_error", message: "HTTP 400" } } },
		});
	});

	it("retries a timeout on the same backend: the run may exist", () => {
		const d = afterSubmit(job(), { ok: false, reason: "unreachable", message: "timed out" }, ctx);
		expect(d).toMatchObject({ type: "schedule", event: "retry", detail: "timed out", job: { transient_failures: 1 } });
	});

	it("never moves a pinned job", () => {
		const pinned = job();
		pinned.spec.backend.pinned = true;
		const d = afterFailure(pinned, { ok: false, reason: "rejected", message: "no" }, ctx);
		expect(d.type).toBe("finish");
	});

	it("moves a job away from a backend with no capacity, else fails it with the failure's own code", () => {
		const none = {
			ok: false,
			reason: "no_capacity",
			message: "No vast.ai offer matched",
			code: "no_capacity",
		} as const;
		expect(afterSubmit(job(), none, ctx)).toMatchObject({
			type: "failover",
			otherwise: { type: "finish", job: { error: { code: "no_capacity", message: "No vast.ai offer matched" } } },
		});
		const pinned = job();
		pinned.spec.backend.pinned = true;
		const key = { ok: false, reason: "misconfigured", message: "key refused", code: "backend_misconfigured" } as const;
		expect(afterSubmit(pinned, key, ctx)).toMatchObject({
			type: "finish",
			job: { error: { code: "backend_misconfigured" } },
		});
	});
});

describe("after a refused admission", () => {
	it("waits for a slot, or leaves a backend whose circuit is open", () => {
		const refusal = { ok: false as const, reason: "full" as const, delayMs: 10_000, detail: "position 2" };
		const full = notAdmitted(job(), { ...refusal, position: 2, ahead: 3 }, ctx);
		expect(full).toMatchObject({ type: "schedule", event: "waiting", delayMs: 10_000, detail: "position 2" });
		const retryAtMs = ctx.now + 5_000;
		const open = notAdmitted(
			job(),
			{ ok: false, reason: "circuit_open", delayMs: 5_000, detail: "failing", retryAtMs },
			ctx,
		);
		expect(open).toMatchObject({ type: "failover", otherwise: { type: "schedule", event: "waiting" } });
	});

	it("says where the job stands: its place in the queue, or when the open circuit lets a probe through", () => {
		const refusal = { ok: false as const, reason: "full" as const, delayMs: 10_000, detail: "position 2" };
		const first = notAdmitted(job(), { ...refusal, position: 2, ahead: 3 }, ctx);
		if (first.type !== "schedule") throw new Error("not scheduled");
		const since = new Date(ctx.now).toISOString();
		expect(first.job.queue).toEqual({ reason: "waiting_for_capacity", position: 2, ahead: 3, since });
		// A later check keeps `since` while the reason is the same, with the new place.
		const later = notAdmitted(first.job, { ...refusal, position: 1, ahead: 2 }, { now: ctx.now + 10_000 });
		if (later.type !== "schedule") throw new Error("not scheduled");
		expect(later.job.queue).toEqual({ reason: "waiting_for_capacity", position: 1, ahead: 2, since });
		const retryAtMs = ctx.now + 30_000;
		const pinned = job();
		pinned.spec.backend.pinned = true;
		const open = notAdmitted(
			pinned,
			{ ok: false, reason: "circuit_open", delayMs: 30_000, detail: "x", retryAtMs },
			ctx,
		);
		if (open.type !== "schedule") throw new Error("not scheduled");
		expect(open.job.queue).toMatchObject({ reason: "backend_unhealthy", retry_at: new Date(retryAtMs).toISOString() });
	});

	it("tells a booting machine (cold start) from a transient failure (retrying), and a job the backend holds", () => {
		const booting = afterSubmit(job(), { ok: false, reason: "booting", message: "booting" }, ctx);
		expect(booting).toMatchObject({ type: "schedule", job: { queue: { reason: "cold_start" } } });
		const flaky = afterSubmit(job(), { ok: false, reason: "unreachable", message: "timed out" }, ctx);
		expect(flaky).toMatchObject({ type: "schedule", job: { queue: { reason: "retrying" } } });
		const accepted = afterSubmit(job(), { ok: true, remoteId: "r-1" }, ctx);
		expect(accepted).toMatchObject({ type: "schedule", job: { queue: { reason: "backend_queued", position: 0 } } });
	});
});

describe("after a poll", () => {
	it("records a change of progress, and an identical poll only as `polled`", () => {
		const running = { ok: true as const, state: "running" as const, progress: { percent: 40 } };
		const first = afterPoll(submitted, running, ctx);
		expect(first).toMatchObject({ type: "schedule", event: "progress", job: { status: "running" } });
		if (first.type !== "schedule") throw new Error("not scheduled");
		expect(afterPoll(first.job, running, ctx)).toMatchObject({ type: "schedule", event: "polled" });
	});

	it("resubmits after failed transfers while under the attempt limit, billing the run", () => {
		const failed = {
			ok: true as const,
			state: "failed" as const,
			error: { code: "output_upload_failed", message: "PUT 503" },
			executionMs: 2000,
		};
		expect(afterPoll(submitted, failed, ctx)).toMatchObject({
			type: "schedule",
			event: "transfer_failed",
			job: { status: "queued", remote_id: null, cost: { gpu_seconds: 2, usd: 0.002 } },
		});
		const last = job({ remote_id: "r3", attempts: MAX_ATTEMPTS });
		expect(afterPoll(last, failed, ctx)).toMatchObject({ type: "finish", job: { error: failed.error } });
	});

	it("resubmits a lost job at once, and gives up at the attempt limit", () => {
		expect(afterPoll(submitted, { ok: true, state: "lost" }, ctx)).toMatchObject({
			type: "schedule",
			event: "lost",
			delayMs: 0,
		});
		// Why it was lost (a dead machine) goes to the history.
		const died = { ok: true, state: "lost", error: { code: "instance_lost", message: "instance 5 exited" } } as const;
		expect(afterPoll(submitted, died, ctx)).toMatchObject({ event: "lost", detail: "instance 5 exited" });
		const last = job({ remote_id: "r3", attempts: MAX_ATTEMPTS });
		expect(afterPoll(last, { ok: true, state: "lost" }, ctx)).toMatchObject({
			type: "finish",
			job: { error: { code: "lost" } },
		});
	});

	it("checks a reported video before the job may succeed", () => {
		const status = { ok: true as const, state: "completed" as const, output: { content_type: "video/mp4", size: 5 } };
		const d = afterPoll(submitted, status, ctx);
		expect(d.type).toBe("verify");
		expect(afterVerification(submitted, status, { ok: true, sha256: "ab" }, ctx)).toMatchObject({
			type: "finish",
			event: "succeeded",
			job: { status: "succeeded", output: { video: { size: 5, sha256: "ab" } } },
		});
		expect(afterVerification(submitted, status, { ok: false, message: "short" }, ctx)).toMatchObject({
			type: "finish",
			event: "failed",
			job: { error: { code: "output_verification_failed", message: "short" } },
		});
	});

	it("starts a job never seen running when the backend says its run began", () => {
		const status = {
			ok: true as const,
			state: "completed" as const,
			executionMs: 4000,
			output: { content_type: "video/mp4", size: 5 },
		};
		const d = afterVerification(submitted, status, { ok: true, sha256: "ab" }, ctx);
		expect(d).toMatchObject({
			job: { started_at: new Date(ctx.now - 4000).toISOString(), completed_at: new Date(ctx.now).toISOString() },
		});
	});
});

describe("the next poll's timing", () => {
	const running = job({
		remote_id: "r1",
		attempts: 1,
		status: "running",
		started_at: new Date(ctx.now - 30_000).toISOString(),
		progress: { percent: 10 },
	});

	it("aims at the end the worker's progress predicts, from RunPod's executionTime when given", () => {
		const progress = { percent: 50, stage: "sampling" as const };
		const d = afterPoll(running, { ok: true, state: "running", progress, executionMs: 40_000 }, ctx);
		// 50 % after 40 s: 40 s left, polled at 80 % of it.
		expect(d).toMatchObject({ type: "schedule", delayMs: 32_000 });
		const fromStart = afterPoll(running, { ok: true, state: "running", progress }, ctx);
		expect(fromStart).toMatchObject({ type: "schedule", delayMs: 24_000 });
	});

	it("waits longer between fallback polls when the backend sends a webhook", () => {
		const spec = { ...running.spec, expected_run_s: 300 };
		const d = afterPoll({ ...running, spec, progress: { percent: 0 } }, { ok: true, state: "running" }, ctx);
		const hooked = afterPoll(
			{ ...running, spec, progress: { percent: 0 } },
			{ ok: true, state: "running" },
			{
				...ctx,
				webhook: true,
			},
		);
		expect(d).toMatchObject({ type: "schedule", delayMs: 60_000 });
		expect(hooked).toMatchObject({ type: "schedule", delayMs: 120_000 });
	});
});
