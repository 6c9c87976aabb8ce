import { describe, expect, it } from "vitest";
import type { JobSnapshot } from "../../src/jobs/record";
import { jobDataPoint, recordJobMetrics } from "../../src/ops/metrics";

type MetricsEnv = Pick<Env, "METRICS">;

const job: JobSnapshot = {
	id: "job_1",
	account_id: "acme",
	status: "succeeded",
	model: "wan2.2-i2v",
	created_at: "2026-11-23T10:00:00.000Z",
	started_at: "2026-11-23T10:00:04.000Z",
	completed_at: "2026-11-23T10:02:04.500Z",
	progress: null,
	backend: { name: "rp", kind: "runpod" },
	attempts: 1,
	error: null,
	output: { video: { content_type: "video/mp4", size: 1_234_567 } },
	cost: { gpu_seconds: 120, usd: 0.0912 },
	updated_at: "2026-11-23T10:02:04.500Z",
} as unknown as JobSnapshot;

describe("per-job metrics", () => {
	it("writes queue, execution and end-to-end times, bytes and cost in a fixed order", () => {
		const p = jobDataPoint(job, { delayMs: 8000 });
		expect(p.blobs).toEqual(["succeeded", "wan2.2-i2v", "rp", "runpod", "acme", ""]);
		expect(p.doubles).toEqual([4000, 120_500, 124_500, 1_234_567, 0.0912, 120, 1, 8000]);
	});

	it("is a no-op without the binding or before the job ends, and never throws", () => {
		expect(recordJobMetrics({} as MetricsEnv, job)).toBe(false);
		const points: unknown[] = [];
		const env = { METRICS: { writeDataPoint: (d: unknown) => points.push(d) } } as unknown as MetricsEnv;
		expect(recordJobMetrics(env, { ...job, completed_at: null })).toBe(false);
		expect(recordJobMetrics(env, job)).toBe(true);
		expect(points).toHaveLength(1);
		const broken = {
			METRICS: {
				writeDataPoint: () => {
					throw new Error("quota");
				},
			},
		} as unknown as MetricsEnv;
		expect(recordJobMetrics(broken, job)).toBe(false);
	});
});
