import { describe, expect, it } from "vitest";
import {
	DEFAULT_OVERHEAD_MS,
	type Estimate,
	estimateExecution,
	etaOf,
	queueWaitMs,
	type RunSample,
	secondsPerUnit,
	workUnits,
} from "../../src/jobs/eta";

const run = (units: number, exec_ms: number, delay_ms: number | null = null): RunSample => ({
	model: "m",
	units,
	exec_ms,
	delay_ms,
});

describe("execution estimate", () => {
	it("fits a line through runs of different sizes: its fixed cost and its cost per unit", () => {
		const runs = [run(10, 12_000), run(20, 22_000), run(40, 42_000), run(80, 82_000)];
		expect(estimateExecution(runs, 60, null)).toEqual({ exec_ms: 62_000, basis: "measured", samples: 4 });
	});

	it("scales by time per unit when the runs are all one size", () => {
		expect(estimateExecution([run(10, 20_000), run(10, 22_000)], 20, null).exec_ms).toBe(42_000);
	});

	it("starts from the manifest's throughput, else a default", () => {
		const units = workUnits(80, 640, 640);
		const perUnit = secondsPerUnit({ seconds_per_frame: 1, width: 640, height: 640 });
		expect(estimateExecution([], units, perUnit)).toEqual({
			exec_ms: DEFAULT_OVERHEAD_MS + 80_000,
			basis: "manifest",
			samples: 0,
		});
		expect(estimateExecution([], units, null).basis).toBe("default");
	});
});

describe("queue wait", () => {
	it("is zero while a slot is free, else what is left of the first holder's run, plus the jobs queued first", () => {
		expect(queueWaitMs([4_000], 0, 2, 10_000)).toBe(0);
		expect(queueWaitMs([4_000, 7_000], 0, 2, 10_000)).toBe(3_000);
		// Two queued first take the slots freeing at 3 s and 6 s; this job gets the one the first frees again.
		expect(queueWaitMs([4_000, 7_000], 2, 2, 10_000)).toBe(13_000);
		// A holder past the mean is expected to finish soon, not already.
		expect(queueWaitMs([30_000], 0, 1, 10_000)).toBe(1_000);
	});
});

describe("eta", () => {
	const estimate: Estimate = { exec_ms: 100_000, basis: "measured", samples: 7, wait_ms: 30_000, delay_ms: 4_000 };
	const now = Date.parse("2026-01-01T00:10:00Z");
	const at = (ms: number) => new Date(ms).toISOString();

	it("starts a waiting job after the jobs ahead, and one the backend holds after its queue delay", () => {
		const waiting = etaOf(
			{
				status: "queued",
				started_at: null,
				progress: { percent: 0 },
				queue: { reason: "waiting_for_capacity", since: at(now) },
			},
			estimate,
			now,
		);
		expect(waiting).toEqual({
			start_at: at(now + 34_000),
			finish_at: at(now + 134_000),
			basis: "measured",
			samples: 7,
		});
		const held = etaOf(
			{
				status: "queued",
				started_at: null,
				progress: { percent: 0 },
				queue: { reason: "backend_queued", since: at(now - 1_000) },
			},
			estimate,
			now,
		);
		expect(held.start_at).toBe(at(now + 3_000));
	});

	it("refines a running job's finish from its progress: wholly from half way", () => {
		const started = now - 60_000;
		const half = etaOf({ status: "running", started_at: at(started), progress: { percent: 50 } }, estimate, now);
		expect(half).toMatchObject({ start_at: at(started), finish_at: at(now + 60_000), basis: "progress" });
		const early = etaOf({ status: "running", started_at: at(started), progress: { percent: 0 } }, estimate, now);
		expect(early).toMatchObject({ finish_at: at(now + 40_000), basis: "measured" });
	});
});
