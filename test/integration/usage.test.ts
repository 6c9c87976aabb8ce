import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN, call } from "../helpers/api";

interface JobRow {
	id: string;
	account: string;
	status: "queued" | "running" | "succeeded" | "failed" | "canceled";
	model: string;
	backend: [string, string] | null;
	gpu: number | null;
	usd: number | null;
	done: string | null;
}

async function insertJob(j: JobRow) {
	await env.DB.prepare(
		`INSERT INTO jobs (id, account_id, status, model, backend_name, backend_kind, gpu_seconds, cost_usd, created_at,
		   started_at, completed_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
	)
		.bind(
			j.id,
			j.account,
			j.status,
			j.model,
			j.backend?.[0] ?? null,
			j.backend?.[1] ?? null,
			j.gpu,
			j.usd,
			"2026-11-01T00:00:00.000Z",
			null,
			j.done,
			j.done ?? "2026-11-01T00:00:00.000Z",
		)
		.run();
}

interface Group {
	jobs: number;
	gpu_seconds: number;
	cost_usd: number;
	[k: string]: unknown;
}
interface UsageBody {
	from: string;
	window_seconds: number;
	totals: Group;
	by_model: Group[];
	by_backend: Group[];
	by_day?: Group[];
	by_model_and_day?: Group[];
	by_account?: Group[];
}

let key: string;

beforeAll(async () => {
	const res = await call("/v1/admin/keys", {
		method: "POST",
		headers: { ...ADMIN, "content-type": "application/json" },
		body: JSON.stringify({ name: "usage", account: "acme" }),
	});
	key = ((await res.json()) as { key: string }).key;
	await env.DB.prepare(
		"INSERT OR IGNORE INTO accounts (id, created_at) VALUES ('other', '2026-01-01T00:00:00Z')",
	).run();
	// Known durations and prices: a 120 s and a 300 s Wan job on RunPod at $0.00076/s, a failed 30 s one, a
	// preview on a pod, one outside the window, one still running, and another account's job.
	const rp: [string, string] = ["rp-main", "runpod"];
	const pod: [string, string] = ["local-pod", "pod"];
	const rows: JobRow[] = [
		{
			id: "job_u1",
			account: "acme",
			status: "succeeded",
			model: "wan2.2-i2v",
			backend: rp,
			gpu: 120,
			usd: 0.0912,
			done: "2026-11-02T10:00:00.000Z",
		},
		{
			id: "job_u2",
			account: "acme",
			status: "succeeded",
			model: "wan2.2-i2v",
			backend: rp,
			gpu: 300,
			usd: 0.228,
			done: "2026-11-03T10:00:00.000Z",
		},
		{
			id: "job_u3",
			account: "acme",
			status: "failed",
			model: "wan2.2-s2v",
			backend: rp,
			gpu: 30,
			usd: 0.0228,
			done: "2026-11-04T10:00:00.000Z",
		},
		{
			id: "job_u4",
			account: "acme",
			status: "succeeded",
			model: "preview",
			backend: pod,
			gpu: 2,
			usd: 0,
			done: "2026-11-05T10:00:00.000Z",
		},
		{
			id: "job_u5",
			account: "acme",
			status: "succeeded",
			model: "preview",
			backend: pod,
			gpu: 2,
			usd: 0,
			done: "2026-12-05T10:00:00.000Z",
		},
		{
			id: "job_u6",
			account: "acme",
			status: "running",
			model: "wan2.2-i2v",
			backend: rp,
			gpu: null,
			usd: null,
			done: null,
		},
		{
			id: "job_u7",
			account: "other",
			status: "succeeded",
			model: "wan2.2-i2v",
			backend: rp,
			gpu: 200,
			usd: 0.152,
			done: "2026-11-06T10:00:00.000Z",
		},
	];
	for (const r of rows) await insertJob(r);
});

const WINDOW = "from=2026-11-01T00:00:00Z&to=2026-12-01T00:00:00Z";

describe("GET /v1/usage", () => {
	it("sums the caller's finished jobs in the window, by model and by backend", async () => {
		const res = await call(`/v1/usage?${WINDOW}`, { headers: { authorization: `Bearer ${key}` } });
		expect(res.status).toBe(200);
		const u = (await res.json()) as UsageBody;
		expect(u.from).toBe("2026-11-01T00:00:00.000Z");
		expect(u.window_seconds).toBe(30 * 86_400);
		expect(u.totals).toEqual({ jobs: 4, succeeded: 3, failed: 1, canceled: 0, gpu_seconds: 452, cost_usd: 0.342 });
		expect(u.by_model).toEqual(
			expect.arrayContaining([
				{ model: "wan2.2-i2v", jobs: 2, succeeded: 2, failed: 0, canceled: 0, gpu_seconds: 420, cost_usd: 0.3192 },
				{ model: "wan2.2-s2v", jobs: 1, succeeded: 0, failed: 1, canceled: 0, gpu_seconds: 30, cost_usd: 0.0228 },
				{ model: "preview", jobs: 1, succeeded: 1, failed: 0, canceled: 0, gpu_seconds: 2, cost_usd: 0 },
			]),
		);
		expect(u.by_backend).toEqual(
			expect.arrayContaining([
				{
					backend_name: "rp-main",
					backend_kind: "runpod",
					jobs: 3,
					succeeded: 2,
					failed: 1,
					canceled: 0,
					gpu_seconds: 450,
					cost_usd: 0.342,
				},
				{
					backend_name: "local-pod",
					backend_kind: "pod",
					jobs: 1,
					succeeded: 1,
					failed: 0,
					canceled: 0,
					gpu_seconds: 2,
					cost_usd: 0,
				},
			]),
		);
		expect(u.by_account).toBeUndefined();
		// One finished job a day here: the days in order, and per model and day.
		expect(u.by_day?.map((g) => [g.day, g.jobs, g.gpu_seconds])).toEqual([
			["2026-11-02", 1, 120],
			["2026-11-03", 1, 300],
			["2026-11-04", 1, 30],
			["2026-11-05", 1, 2],
		]);
		expect(u.by_model_and_day).toContainEqual({
			day: "2026-11-04",
			model: "wan2.2-s2v",
			jobs: 1,
			succeeded: 0,
			failed: 1,
			canceled: 0,
			gpu_seconds: 30,
			cost_usd: 0.0228,
		});
		expect(u.by_model_and_day).toHaveLength(4);
	});

	it("answers problems for a missing key and a bad window", async () => {
		const anon = await call(`/v1/usage?${WINDOW}`);
		expect(anon.status).toBe(401);
		const backwards = await call("/v1/usage?from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z", {
			headers: { authorization: `Bearer ${key}` },
		});
		expect(backwards.status).toBe(400);
		expect(backwards.headers.get("content-type")).toBe("application/problem+json");
		const garbage = await call("/v1/usage?from=yesterday", { headers: { authorization: `Bearer ${key}` } });
		expect(garbage.status).toBe(400);
		const tooLong = await call("/v1/usage?from=2024-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", {
			headers: { authorization: `Bearer ${key}` },
		});
		expect(tooLong.status).toBe(400);
	});
});

describe("GET /v1/admin/usage", () => {
	it("covers every account, with a per-account breakdown and an account filter", async () => {
		const res = await call(`/v1/admin/usage?${WINDOW}`, { headers: ADMIN });
		expect(res.status).toBe(200);
		const u = (await res.json()) as UsageBody;
		expect(u.totals).toMatchObject({ jobs: 5, gpu_seconds: 652, cost_usd: 0.494 });
		expect(u.by_account).toEqual(
			expect.arrayContaining([
				expect.objectContaining({ account: "acme", jobs: 4, gpu_seconds: 452 }),
				expect.objectContaining({ account: "other", jobs: 1, gpu_seconds: 200, cost_usd: 0.152 }),
			]),
		);
		const one = (await (await call(`/v1/admin/usage?${WINDOW}&account=other`, { headers: ADMIN })).json()) as UsageBody;
		expect(one.totals.jobs).toBe(1);
		expect((await call(`/v1/admin/usage?${WINDOW}`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(401);
	});
});

describe("the OpenAPI document", () => {
	it("lists the usage and stats routes", async () => {
		const doc = (await (await call("/openapi.json")).json()) as { paths: Record<string, unknown> };
		expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/v1/usage", "/v1/admin/usage", "/v1/admin/stats"]));
	});
});
