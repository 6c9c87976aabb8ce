import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { ADMIN, call } from "../helpers/api";

interface StatsBody {
	window_seconds: number;
	jobs: Record<string, unknown> & { success_rate: number };
	backends: { name: string; [k: string]: unknown }[];
}

/** Instants `s` seconds before `now`: one clock reading per job, so its spans are exact (no millisecond tick between). */
const before = (now: number) => (s: number) => new Date(now - s * 1000).toISOString();

async function insertJob(
	id: string,
	status: string,
	backend: string | null,
	created: number,
	started: number | null,
	done: number | null,
) {
	const ago = before(Date.now());
	await env.DB.prepare(
		`INSERT INTO jobs (id, account_id, status, model, backend_name, backend_kind, created_at, started_at, completed_at, updated_at)
		 VALUES (?, 'ops', ?, 'preview', ?, 'pod', ?, ?, ?, ?)`,
	)
		.bind(
			id,
			status,
			backend,
			ago(created),
			started === null ? null : ago(started),
			done === null ? null : ago(done),
			ago(0),
		)
		.run();
}

beforeAll(async () => {
	await env.DB.prepare("INSERT OR IGNORE INTO accounts (id, created_at) VALUES ('ops', '2026-01-01T00:00:00Z')").run();
	const put = await call("/v1/admin/backends/stats-pod", {
		method: "PUT",
		headers: ADMIN,
		body: JSON.stringify({ kind: "pod", config: { url: "http://pod.stats.test" } }),
	});
	expect(put.status).toBeLessThan(300);
	// Ten finished jobs in the last hour: queue i s, execution 10·i s (i = 1..10); 8 succeeded, 1 failed, 1 canceled.
	for (let i = 1; i <= 10; i++) {
		const status = i === 9 ? "failed" : i === 10 ? "canceled" : "succeeded";
		const done = 60;
		const started = done + 10 * i;
		await insertJob(`job_s${i}`, status, "stats-pod", started + i, started, done);
	}
	// One from yesterday (outside the window) and the live queue: 2 queued, 1 running.
	await insertJob("job_old", "failed", "stats-pod", 90_000, 89_000, 86_500);
	await insertJob("job_q1", "queued", "stats-pod", 30, null, null);
	await insertJob("job_q2", "queued", "stats-pod", 20, null, null);
	await insertJob("job_r1", "running", "stats-pod", 40, 35, null);
});

describe("GET /v1/admin/stats", () => {
	it("reports the success rate, p50/p95 durations and the queue per backend", async () => {
		const res = await call("/v1/admin/stats?window_s=3600", { headers: ADMIN });
		expect(res.status).toBe(200);
		const s = (await res.json()) as StatsBody;
		expect(s.window_seconds).toBe(3600);
		expect(s.jobs).toMatchObject({ finished: 10, succeeded: 8, failed: 1, canceled: 1 });
		expect(s.jobs.success_rate).toBeCloseTo(8 / 9, 4);
		// Nearest rank over 10 values: p50 is the 5th, p95 the 10th.
		expect(s.jobs.execution_ms).toEqual({ p50: 50_000, p95: 100_000 });
		expect(s.jobs.queue_ms).toEqual({ p50: 5000, p95: 10_000 });
		expect(s.jobs.end_to_end_ms).toEqual({ p50: 55_000, p95: 110_000 });
		const pod = s.backends.find((b) => b.name === "stats-pod");
		expect(pod).toMatchObject({ kind: "pod", enabled: true, queued: 2, running: 1 });
	});

	it("validates the window and requires the admin token", async () => {
		expect((await call("/v1/admin/stats?window_s=5", { headers: ADMIN })).status).toBe(400);
		const anon = await call("/v1/admin/stats");
		expect(anon.status).toBe(401);
		expect(anon.headers.get("content-type")).toBe("application/problem+json");
	});
});

describe("keep-warm (the scheduled handler at chosen times)", () => {
	afterEach(() => vi.restoreAllMocks());

	const keepWarmEnv = { ...env, KEEP_WARM_BACKENDS: "warm-rp", KEEP_WARM_HOURS: "8-20", KEEP_WARM_TZ_OFFSET: "+2" };

	async function tick(iso: string) {
		const ctx = createExecutionContext();
		worker.scheduled(
			createScheduledController({ scheduledTime: Date.parse(iso), cron: "*/5 * * * *" }),
			keepWarmEnv,
			ctx,
		);
		await waitOnExecutionContext(ctx);
	}

	it("pings inside the hours only, then records the cold start (delayTime) of each ping", async () => {
		const put = await call("/v1/admin/backends/warm-rp", {
			method: "PUT",
			headers: ADMIN,
			body: JSON.stringify({
				kind: "runpod",
				config: { endpoint_id: "ep-warm", api_key: "rp-warm-key", base_url: "http://runpod.warm.test/v2" },
			}),
		});
		expect(put.status).toBeLessThan(300);
		const seen: { url: string; method: string; auth: string | null; body: string | null }[] = [];
		vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
			const req = new Request(input as RequestInfo, init);
			seen.push({
				url: req.url,
				method: req.method,
				auth: req.headers.get("authorization"),
				body: req.method === "POST" ? await req.text() : null,
			});
			if (req.url.endsWith("/run")) return Response.json({ id: `rq-${seen.length}`, status: "IN_QUEUE" });
			if (req.url.includes("/status/"))
				return Response.json({ status: "COMPLETED", delayTime: 8421, executionTime: 312 });
			return new Response("unexpected", { status: 500 });
		});

		await tick("2026-11-23T05:55:00Z"); // 07:55 at UTC+2: before the hours
		expect(seen).toEqual([]);

		await tick("2026-11-23T06:00:00Z"); // 08:00: inside
		expect(seen).toHaveLength(1);
		expect(seen[0]).toMatchObject({
			url: "http://runpod.warm.test/v2/ep-warm/run",
			method: "POST",
			auth: "Bearer rp-warm-key",
		});
		expect(JSON.parse(seen[0]?.body ?? "{}")).toEqual({ input: { health_check: true } });
		const sent = await env.DB.prepare("SELECT * FROM keep_warm_pings WHERE backend_name = 'warm-rp'").all();
		expect(sent.results).toEqual([
			expect.objectContaining({ status: "sent", remote_id: "rq-1", backend_kind: "runpod" }),
		]);

		await tick("2026-11-23T18:05:00Z"); // 20:05: after the hours; the earlier ping's result is collected
		expect(seen.map((s) => s.url)).toEqual([
			"http://runpod.warm.test/v2/ep-warm/run",
			"http://runpod.warm.test/v2/ep-warm/status/rq-1",
		]);
		const done = await env.DB.prepare(
			"SELECT status, delay_ms, execution_ms FROM keep_warm_pings WHERE backend_name = 'warm-rp'",
		).all();
		expect(done.results).toEqual([{ status: "completed", delay_ms: 8421, execution_ms: 312 }]);

		// The stats show the cold starts next to the backend.
		const stats = (await (await call("/v1/admin/stats?window_s=2592000", { headers: ADMIN })).json()) as StatsBody;
		// The pings were sent "in 2026-11-23" by the chosen clock; the window is relative to now, so only check shape.
		expect(stats.backends.find((b) => b.name === "warm-rp")).toMatchObject({ kind: "runpod" });
	});

	it("records a failed ping and leaves other housekeeping running when the backend is down", async () => {
		vi.spyOn(globalThis, "fetch").mockImplementation(async () => new Response("down", { status: 503 }));
		await tick("2026-11-23T10:00:00Z");
		const failed = await env.DB.prepare("SELECT status, error FROM keep_warm_pings WHERE status = 'failed'").all();
		expect(failed.results).toEqual([{ status: "failed", error: "HTTP 503 from /run" }]);
	});
});
