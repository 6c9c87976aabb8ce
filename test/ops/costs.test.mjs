import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { costs, workloadOf } from "../../scripts/costs.mjs";
import { breakEvenUtilization, compareCosts, gpusNeeded, percentile } from "../../src/ops/cost-model.ts";
import { countOperations, countProviderPolls, priceJob, wanJobScenarios } from "../../src/ops/platform-cost.ts";
import { collector, startAdminRecorder } from "./helpers.mjs";

// A day in which 100 jobs of 6 minutes each ran: 36,000 GPU-seconds.
const DAY = 86_400;
const usage = {
	from: "2026-11-01T00:00:00.000Z",
	to: "2026-11-02T00:00:00.000Z",
	window_seconds: DAY,
	totals: { jobs: 100, succeeded: 98, failed: 2, canceled: 0, gpu_seconds: 36_000, cost_usd: 27.36 },
	by_model: [],
	by_backend: [
		{
			backend_name: "rp",
			backend_kind: "runpod",
			jobs: 100,
			succeeded: 98,
			failed: 2,
			canceled: 0,
			gpu_seconds: 36_000,
			cost_usd: 27.36,
		},
	],
};
const prices = { serverless_per_second_usd: 0.0005, pod_per_hour_usd: 1.2, vastai_per_hour_usd: 0.9 };

describe("the cost model", () => {
	it("prices the workload on each kind and finds the break-even by hand", () => {
		const r = compareCosts(workloadOf(usage), prices);
		// Serverless: 36,000 s × $0.0005 = $18. Pod: 24 h × $1.20 = $28.80. vast.ai: 24 h × $0.90 = $21.60.
		expect(r.estimates).toEqual([
			{ kind: "serverless", cost_usd: 18, gpus: 0 },
			{ kind: "pod", cost_usd: 28.8, gpus: 1 },
			{ kind: "vastai", cost_usd: 21.6, gpus: 1 },
		]);
		// Break-even: $1.20/h ÷ ($0.0005/s × 3600 s/h) = 1.2 / 1.8 = 2/3 of every hour busy.
		expect(r.break_even.pod_utilization).toBeCloseTo(2 / 3, 6);
		// …which is 57,600 GPU-seconds in a day, i.e. 160 jobs of 360 s.
		expect(r.break_even.pod_gpu_seconds).toBeCloseTo(57_600, 3);
		expect(r.break_even.pod_jobs).toBeCloseTo(160, 2);
		// vast.ai: 0.9 / 1.8 = 0.5 → 43,200 s → 120 jobs.
		expect(r.break_even.vastai_utilization).toBe(0.5);
		expect(r.break_even.vastai_jobs).toBe(120);
		expect(r.utilization).toBeCloseTo(36_000 / DAY, 6);
		expect(r.cheapest).toBe("serverless");
	});

	it("an hourly GPU wins above the break-even, and a busy workload needs more GPUs", () => {
		const busy = { window_seconds: DAY, jobs: 200, gpu_seconds: 72_000, recorded_cost_usd: 0 };
		const r = compareCosts(busy, prices);
		expect(r.estimates[0].cost_usd).toBe(36); // 72,000 × 0.0005
		expect(r.cheapest).toBe("vastai");
		expect(gpusNeeded({ ...busy, gpu_seconds: 2.5 * DAY })).toBe(3);
		expect(breakEvenUtilization(0, 1)).toBe(Number.POSITIVE_INFINITY);
	});

	it("percentiles by nearest rank", () => {
		expect(percentile([], 50)).toBeNull();
		expect(percentile([5, 1, 3, 2, 4], 50)).toBe(3);
		expect(
			percentile(
				Array.from({ length: 100 }, (_, i) => i + 1),
				95,
			),
		).toBe(95);
	});
});

describe("npm run costs", () => {
	let admin;
	beforeAll(async () => {
		admin = await startAdminRecorder({ usage });
	});
	afterAll(async () => admin.close());

	it("reads the usage from the admin API and prints the comparison", async () => {
		const out = collector();
		const r = await costs(
			[
				"--from",
				usage.from,
				"--to",
				usage.to,
				"--serverless-per-s",
				"0.0005",
				"--pod-per-h",
				"1.2",
				"--vast-per-h",
				"0.9",
			],
			{
				env: { REELGATE_URL: admin.url, ADMIN_TOKEN: admin.token },
				log: out.log,
			},
		);
		expect(admin.calls[0].path).toBe("/v1/admin/usage");
		expect(admin.calls[0].query).toBe(`?from=${encodeURIComponent(usage.from)}&to=${encodeURIComponent(usage.to)}`);
		expect(r.break_even.pod_utilization).toBeCloseTo(2 / 3, 6);
		expect(out.text()).toMatch(/serverless\s+\$18\.00/);
		expect(out.text()).toMatch(/pod pays off above 66\.7% busy \(57600 GPU-seconds/);
		expect(out.text()).not.toContain(admin.token);
	});

	it("counts what vast.ai billed beyond the jobs: boot and idle time of each rental", async () => {
		const dir = mkdtempSync(path.join(tmpdir(), "costs-"));
		const file = path.join(dir, "usage.json");
		const rentals = [
			{
				backend_name: "vast",
				instances: 2,
				billed_seconds: 7200,
				boot_seconds: 140,
				billed_usd: 0.84,
				jobs_cost_usd: 0.5,
				unattributed_usd: 0.34,
			},
		];
		writeFileSync(file, JSON.stringify({ ...usage, rentals }));
		const out = collector();
		const r = await costs(["--file", file], { env: {}, log: out.log });
		expect(r.workload.rental_overhead_usd).toBe(0.34);
		// $27.36 carried by jobs + $0.34 of boot and idle = $27.70 paid.
		expect(out.text()).toContain(
			"Recorded cost: $27.36 carried by jobs + $0.3400 of vast.ai boot and idle time = $27.70 paid",
		);
		expect(out.text()).toContain(
			"vast (vast.ai rentals): 2 instances, 2.00 h billed (0.04 h booting), $0.8400: $0.5000 carried by jobs, $0.3400 boot and idle",
		);
		rmSync(dir, { recursive: true, force: true });
	});

	it("refuses bad input clearly", async () => {
		await expect(costs([], { env: {}, log: () => {} })).rejects.toThrow(/Set REELGATE_URL and ADMIN_TOKEN/);
		await expect(costs(["--pod-per-h=-1"], { env: {}, log: () => {} })).rejects.toThrow(/--pod-per-h must be a number/);
		expect(() => workloadOf({})).toThrow(/Not a usage report/);
	});
});

describe("the platform cost of one job", () => {
	const scenario = {
		runSeconds: 300,
		queueSeconds: 5,
		webhook: true,
		providerPolls: 8,
		client: { kind: "poll", pollSeconds: 2 },
		signer: "worker",
		inputBytes: 500_000,
		videoBytes: 5_000_000,
		keptDays: 30,
		cpuMsPerRequest: 2,
		doActiveMsPerCall: 5,
	};

	it("counts the operations path by path", () => {
		const c = countOperations(scenario);
		// 305 s of polls every 2 s: 153 reads + 1; with upload create + complete, job create, download: 158 authenticated,
		// plus the Worker-signed upload PUT, input GET and output PUT, and RunPod's webhook.
		expect(c.worker_requests).toBe(158 + 3 + 1);
		// JobDO: create, 10 alarms (submit, 8 polls, finish), 154 reads, the PUT's check, the poke, the download;
		// gates: 158; BackendDO: 2.
		expect(c.do_requests).toBe(1 + 10 + 154 + 1 + 1 + 1 + 158 + 2);
		expect(c.r2_class_a).toBe(2);
		expect(c.r2_gb_days).toBeCloseTo(0.165, 6);
		const events = countOperations({ ...scenario, client: { kind: "events", reauthSeconds: 15 } });
		// One stream (and its 21 key re-checks) instead of 154 reads; the open stream keeps the JobDO active 305 s.
		expect(events.worker_requests).toBe(5 + 3 + 1);
		expect(events.do_gb_s).toBeGreaterThan(305 * 0.128);
	});

	it("prices it at Cloudflare's rates far under 1 % of the GPU time at RunPod's H100 rate", () => {
		const r = priceJob(scenario);
		expect(r.gpu_usd).toBeCloseTo(300 * 0.00116, 9);
		expect(r.platform_usd).toBeCloseTo(r.usd.workers + r.usd.durable_objects + r.usd.d1 + r.usd.r2, 12);
		for (const { s } of wanJobScenarios({ webhook: 8, polling: 12 })) expect(priceJob(s).ratio).toBeLessThan(0.01);
	});

	it("takes the provider polls from the JobDO's poll timing", () => {
		const hooked = countProviderPolls(300_000, 5_000, true);
		const polled = countProviderPolls(300_000, 5_000, false);
		expect(hooked).toBeLessThanOrEqual(10);
		expect(polled).toBeGreaterThan(hooked);
		expect(polled).toBeLessThanOrEqual(25);
	});

	it("prints the four cases with npm run costs -- --per-job", async () => {
		const out = collector();
		const report = await costs(["--per-job"], { log: out.log });
		expect(report.rows).toHaveLength(4);
		expect(out.text()).toMatch(/\| webhook, client polls every 2 s \| \d+ \|/);
		expect(out.text()).toMatch(/% \|$/m);
	});
});
