import { describe, expect, it } from "vitest";
import { initialState, isTerminal, type JobEvent, type JobState, runStartedAt, transition } from "../../src/jobs/state";

const at = "2026-01-01T00:00:00.000Z";
const video = { video: { content_type: "video/mp4", size: 10, sha256: "ab" } };

function apply(state: JobState, ...events: JobEvent[]): JobState {
	let s = state;
	for (const e of events) {
		const r = transition(s, e);
		if (!r.ok) throw new Error(`refused ${e.type}: ${r.reason}`);
		s = r.state;
	}
	return s;
}

describe("job state machine", () => {
	it("walks queued → running → succeeded, counting the submission and stamping times", () => {
		const s = apply(
			initialState(),
			{ type: "submitted", remoteId: "r1" },
			{ type: "progress", at, progress: { percent: 42.4, stage: "sampling" } },
			{ type: "succeeded", at: "2026-01-01T00:01:00.000Z", output: video, cost: { gpu_seconds: 5, usd: 0.01 } },
		);
		expect(s).toMatchObject({
			status: "succeeded",
			attempts: 1,
			started_at: at,
			completed_at: "2026-01-01T00:01:00.000Z",
			progress: { percent: 100 },
			output: video,
			cost: { gpu_seconds: 5, usd: 0.01 },
		});
	});

	it("a job never seen running started when its run began, not when it was seen finished", () => {
		const done = "2026-01-01T00:01:00.000Z";
		const startedAt = runStartedAt(done, 5400, at);
		expect(startedAt).toBe("2026-01-01T00:00:54.600Z");
		const s = apply(
			initialState(),
			{ type: "submitted", remoteId: "r1" },
			{ type: "succeeded", at: done, output: video, cost: null, startedAt },
		);
		expect([s.started_at, s.completed_at]).toEqual(["2026-01-01T00:00:54.600Z", done]);
		// Seen running: that time stands.
		const seen = apply(
			initialState(),
			{ type: "submitted", remoteId: "r1" },
			{ type: "started", at },
			{ type: "succeeded", at: done, output: video, cost: null, startedAt },
		);
		expect(seen.started_at).toBe(at);
		// Never before the job was created; nothing to go on without an execution time.
		expect(runStartedAt(done, 600_000, at)).toBe(at);
		expect(runStartedAt(done, undefined, at)).toBeUndefined();
	});

	it("clamps progress into 0–100", () => {
		const s = apply(
			initialState(),
			{ type: "submitted", remoteId: "r" },
			{
				type: "progress",
				at,
				progress: { percent: 250 },
			},
		);
		expect(s.progress.percent).toBe(100);
	});

	it("a lost job goes back to queued without its remote id; the resubmission counts", () => {
		const s = apply(
			initialState(),
			{ type: "submitted", remoteId: "r1" },
			{ type: "started", at },
			{ type: "lost" },
			{ type: "submitted", remoteId: "r2" },
		);
		expect(s).toMatchObject({ status: "queued", remote_id: "r2", attempts: 2 });
	});

	it("refuses progress before a submission", () => {
		expect(transition(initialState(), { type: "started", at })).toEqual({
			ok: false,
			reason: "not_submitted",
			status: "queued",
		});
	});

	const terminal: [string, JobEvent][] = [
		["succeeded", { type: "succeeded", at, output: video, cost: null }],
		["failed", { type: "failed", at, error: { code: "x", message: "y" } }],
		["canceled", { type: "canceled", at }],
	];
	const later: JobEvent[] = [
		{ type: "submitted", remoteId: "r9" },
		{ type: "started", at },
		{ type: "progress", at, progress: { percent: 1 } },
		{ type: "lost" },
		{ type: "succeeded", at, output: video, cost: null },
		{ type: "failed", at, error: { code: "x", message: "y" } },
		{ type: "canceled", at },
	];
	describe.each(terminal)("once %s", (status, event) => {
		const s = apply(initialState(), { type: "submitted", remoteId: "r" }, event);
		it("is terminal", () => expect(isTerminal(s.status)).toBe(true));
		it.each(later.map((e) => [e.type, e] as const))("refuses %s", (_t, e) => {
			expect(transition(s, e)).toEqual({ ok: false, reason: "terminal", status });
		});
	});

	it("cancels from queued and from running", () => {
		expect(apply(initialState(), { type: "canceled", at }).status).toBe("canceled");
		const running = apply(initialState(), { type: "submitted", remoteId: "r" }, { type: "started", at });
		expect(apply(running, { type: "canceled", at })).toMatchObject({ status: "canceled", completed_at: at });
	});

	it("keeps a failure's cost when given", () => {
		const s = apply(initialState(), {
			type: "failed",
			at,
			error: { code: "inference_failed", message: "boom" },
			cost: { gpu_seconds: 1, usd: 0 },
		});
		expect(s).toMatchObject({ status: "failed", error: { code: "inference_failed" }, cost: { gpu_seconds: 1 } });
	});

	it("adds what abandoned runs spent to the final cost", () => {
		const run = (id: string) => [{ type: "submitted", remoteId: id } as const, { type: "started", at } as const];
		const abandoned = { type: "lost", cost: { gpu_seconds: 0.8, usd: 0.0004 } } as const;
		const twice = apply(initialState(), ...run("r1"), abandoned, ...run("r2"), abandoned);
		// While it waits for the next submission, the job shows what it has spent so far.
		expect(twice).toMatchObject({ status: "queued", cost: { gpu_seconds: 1.6, usd: 0.0008 } });
		const succeeded = apply(twice, ...run("r3"), {
			type: "succeeded",
			at,
			output: video,
			cost: { gpu_seconds: 5.4, usd: 0.0027 },
		});
		expect(succeeded.cost).toEqual({ gpu_seconds: 7, usd: 0.0035 });
		// A run that reported no time adds nothing; a failure without a cost keeps what was spent.
		const unknown = apply(twice, ...run("r3"), { type: "lost" }, ...run("r4"), {
			type: "failed",
			at,
			error: { code: "lost", message: "gone" },
		});
		expect(unknown.cost).toEqual({ gpu_seconds: 1.6, usd: 0.0008 });
		expect(apply(initialState(), { type: "lost" }, { type: "canceled", at }).cost).toBeNull();
	});
});
