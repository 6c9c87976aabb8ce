import { createRoute, z } from "@hono/zod-openapi";
import { newRouter } from "../app";
import { requireAdmin } from "../auth/middleware";
import { listBackends } from "../db/backends";
import { activeJobsByBackend, type FinishedJobTiming, finishedJobTimings, keepWarmDelays } from "../db/usage";
import { problemResponses } from "../errors";
import { percentile } from "../ops/cost-model";

const Quantiles = z.object({ p50: z.number().nullable(), p95: z.number().nullable() });

const StatsSchema = z
	.object({
		from: z.string(),
		window_seconds: z.number().int(),
		jobs: z.object({
			finished: z.number().int(),
			succeeded: z.number().int(),
			failed: z.number().int(),
			canceled: z.number().int(),
			success_rate: z
				.number()
				.nullable()
				.openapi({ description: "succeeded / (succeeded + failed); null without any." }),
			queue_ms: Quantiles,
			execution_ms: Quantiles,
			end_to_end_ms: Quantiles,
		}),
		backends: z.array(
			z.object({
				name: z.string(),
				kind: z.string().nullable(),
				enabled: z.boolean().nullable(),
				queued: z.number().int(),
				running: z.number().int(),
				health: z.unknown().nullable(),
				keep_warm: z.object({ pings: z.number().int(), answered: z.number().int(), delay_ms: Quantiles }),
			}),
		),
	})
	.openapi("Stats");

const statsRoute = createRoute({
	method: "get",
	path: "/v1/admin/stats",
	tags: ["Admin"],
	summary: "Queue depth and health per backend, success rate and p50/p95 durations over a window",
	security: [{ adminToken: [] }],
	middleware: [requireAdmin] as const,
	request: {
		query: z.object({
			window_s: z.coerce
				.number()
				.int()
				.min(60)
				.max(30 * 86_400)
				.default(3600)
				.openapi({ description: "Window in seconds, ending now (60 to 30 days; default 1 hour)." }),
		}),
	},
	responses: {
		200: { description: "Stats", content: { "application/json": { schema: StatsSchema } } },
		...problemResponses(400, 401, 403),
	},
});

const span = (from: string | null, to: string | null): number | null => {
	if (!from || !to) return null;
	const d = Date.parse(to) - Date.parse(from);
	return Number.isFinite(d) && d >= 0 ? d : null;
};

/** The stored health report; a malformed one reads as unknown rather than failing the whole stats answer. */
function parseHealth(text: string | null): unknown {
	if (!text) return null;
	try {
		return JSON.parse(text) as unknown;
	} catch {
		return null;
	}
}

const quantiles = (values: number[]) => ({ p50: percentile(values, 50), p95: percentile(values, 95) });
const present = (xs: (number | null)[]) => xs.filter((x): x is number => x !== null);

/** Success rate and the p50/p95 of queue, execution and end-to-end times of the finished jobs. */
export function jobStats(rows: FinishedJobTiming[]) {
	const count = (s: string) => rows.filter((r) => r.status === s).length;
	const succeeded = count("succeeded");
	const failed = count("failed");
	return {
		finished: rows.length,
		succeeded,
		failed,
		canceled: count("canceled"),
		// Canceled jobs say nothing about the backends' reliability, so they stay out of the rate.
		success_rate: succeeded + failed > 0 ? Math.round((succeeded / (succeeded + failed)) * 10_000) / 10_000 : null,
		queue_ms: quantiles(present(rows.map((r) => span(r.created_at, r.started_at)))),
		execution_ms: quantiles(present(rows.map((r) => span(r.started_at, r.completed_at)))),
		end_to_end_ms: quantiles(present(rows.map((r) => span(r.created_at, r.completed_at)))),
	};
}

export const statsRoutes = newRouter().openapi(statsRoute, async (c) => {
	const windowS = c.req.valid("query").window_s;
	const from = new Date(Date.now() - windowS * 1000).toISOString();
	const [timings, active, backends, pings] = await Promise.all([
		finishedJobTimings(c.env.DB, from),
		activeJobsByBackend(c.env.DB),
		listBackends(c.env.DB),
		keepWarmDelays(c.env.DB, from),
	]);
	const names = new Set<string>([
		...backends.map((b) => b.name),
		...active.map((a) => a.backend_name ?? "(unassigned)"),
	]);
	const rows = [...names].map((name) => {
		const b = backends.find((x) => x.name === name);
		const a = active.find((x) => (x.backend_name ?? "(unassigned)") === name);
		const mine = pings.filter((p) => p.backend_name === name);
		return {
			name,
			kind: b?.kind ?? null,
			enabled: b ? b.enabled === 1 : null,
			queued: a?.queued ?? 0,
			running: a?.running ?? 0,
			health: parseHealth(b?.last_health ?? null),
			keep_warm: {
				pings: mine.length,
				answered: mine.filter((p) => p.status === "completed").length,
				delay_ms: quantiles(present(mine.map((p) => p.delay_ms))),
			},
		};
	});
	return c.json({ from, window_seconds: windowS, jobs: jobStats(timings), backends: rows }, 200);
});
