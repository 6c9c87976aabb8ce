import { createRoute, z } from "@hono/zod-openapi";
import { newRouter } from "../app";
import { requireAdmin, requireKey } from "../auth/middleware";
import { type RentalUsage, rentalUsage } from "../db/rentals";
import { type UsageGroup, type UsageRow, usageRows } from "../db/usage";
import { invalid, problemResponses } from "../errors";

const DAY_MS = 86_400_000;
const MAX_RANGE_MS = 366 * DAY_MS;

export const UsageQuerySchema = z.object({
	from: z.iso
		.datetime({ offset: true })
		.optional()
		.openapi({ description: "Start (inclusive) of the window, ISO 8601; default: 30 days before `to`." }),
	to: z.iso
		.datetime({ offset: true })
		.optional()
		.openapi({ description: "End (exclusive) of the window, ISO 8601; default: now." }),
});

const AdminUsageQuerySchema = UsageQuerySchema.extend({
	account: z.string().max(64).optional().openapi({ description: "Only this account." }),
});

const GroupFields = {
	jobs: z.number().int(),
	succeeded: z.number().int(),
	failed: z.number().int(),
	canceled: z.number().int(),
	gpu_seconds: z.number(),
	cost_usd: z.number(),
};

const UsageSchema = z
	.object({
		from: z.string(),
		to: z.string(),
		window_seconds: z.number(),
		totals: z.object(GroupFields),
		by_model: z.array(z.object({ model: z.string(), ...GroupFields })),
		by_backend: z.array(
			z.object({ backend_name: z.string().nullable(), backend_kind: z.string().nullable(), ...GroupFields }),
		),
		by_day: z
			.array(z.object({ day: z.string().openapi({ example: "2026-11-02" }), ...GroupFields }))
			.openapi({ description: "Per UTC day the jobs finished, oldest first." }),
		by_model_and_day: z
			.array(z.object({ day: z.string(), model: z.string(), ...GroupFields }))
			.openapi({ description: "Per UTC day and model, oldest day first." }),
	})
	.openapi("Usage");

const RentalSchema = z
	.object({
		backend_name: z.string(),
		instances: z.number().int().openapi({ description: "Instances that billed within the window." }),
		billed_seconds: z.number().openapi({ description: "Their rental time within the window, boot and idle included." }),
		boot_seconds: z.number().openapi({ description: "Of which booting (created until ComfyUI first answered)." }),
		billed_usd: z.number().openapi({ description: "What vast.ai billed for that time at each instance's $/h." }),
		jobs_cost_usd: z.number().openapi({ description: "What the backend's jobs that finished in the window carry." }),
		unattributed_usd: z.number().openapi({
			description: "Billed but carried by no job (boot and idle): billed_usd − jobs_cost_usd, at least 0.",
		}),
	})
	.openapi("RentalUsage");

const AdminUsageSchema = UsageSchema.extend({
	by_account: z.array(z.object({ account: z.string(), ...GroupFields })),
	rentals: z.array(RentalSchema).openapi({
		description: "vast.ai rentals per vastai backend: the whole rental is billed, jobs carry only their run time.",
	}),
}).openapi("AdminUsage");

/** Each backend's rentals beside what its jobs carry: the rest is boot and idle time nobody was charged for. */
export function rentalsSummary(rentals: RentalUsage[], rows: UsageRow[]) {
	return rentals.map((r) => {
		const jobs = rows.filter((row) => row.backend_name === r.backend_name).reduce((sum, row) => sum + row.cost_usd, 0);
		const billed = Math.round(r.billed_usd * 1e6) / 1e6;
		const jobsCost = Math.round(jobs * 1e6) / 1e6;
		return {
			backend_name: r.backend_name,
			instances: r.instances,
			billed_seconds: Math.round(r.billed_seconds * 1000) / 1000,
			boot_seconds: Math.round(r.boot_seconds * 1000) / 1000,
			billed_usd: billed,
			jobs_cost_usd: jobsCost,
			unattributed_usd: Math.max(0, Math.round((billed - jobsCost) * 1e6) / 1e6),
		};
	});
}

/** Resolves and checks the window; ISO strings in UTC so they compare with the stored `completed_at`. */
export function usageWindow(q: { from?: string; to?: string }, nowMs = Date.now()): { from: string; to: string } {
	const to = q.to ? Date.parse(q.to) : nowMs;
	const from = q.from ? Date.parse(q.from) : to - 30 * DAY_MS;
	if (!(from < to)) throw invalid("`from` must be before `to`.", [{ path: "query.from", message: "not before `to`" }]);
	if (to - from > MAX_RANGE_MS) {
		throw invalid("The window is at most 366 days.", [{ path: "query.from", message: "window too long" }]);
	}
	return { from: new Date(from).toISOString(), to: new Date(to).toISOString() };
}

const zero = (): UsageGroup => ({ jobs: 0, succeeded: 0, failed: 0, canceled: 0, gpu_seconds: 0, cost_usd: 0 });

function add(into: UsageGroup, row: UsageGroup): void {
	into.jobs += row.jobs;
	into.succeeded += row.succeeded;
	into.failed += row.failed;
	into.canceled += row.canceled;
	into.gpu_seconds += row.gpu_seconds;
	into.cost_usd += row.cost_usd;
}

/** Rounds sums of floats for display: micro-dollars and milliseconds are enough. */
function tidy<T extends UsageGroup>(g: T): T {
	return { ...g, gpu_seconds: Math.round(g.gpu_seconds * 1000) / 1000, cost_usd: Math.round(g.cost_usd * 1e6) / 1e6 };
}

function groupBy<K extends string>(rows: UsageRow[], key: (r: UsageRow) => K): Map<K, UsageGroup> {
	const out = new Map<K, UsageGroup>();
	for (const r of rows) {
		const k = key(r);
		const g = out.get(k) ?? zero();
		add(g, r);
		out.set(k, g);
	}
	return out;
}

/** Folds the grouped rows into totals, per model and per backend (and per account for the admin view). */
export function summarizeUsage(rows: UsageRow[], window: { from: string; to: string }) {
	const totals = zero();
	for (const r of rows) add(totals, r);
	const byModel = groupBy(rows, (r) => r.model);
	const byBackend = groupBy(rows, (r) => JSON.stringify([r.backend_name, r.backend_kind]));
	const byAccount = groupBy(rows, (r) => r.account_id);
	const byDay = groupBy(rows, (r) => r.day);
	const byModelDay = groupBy(rows, (r) => JSON.stringify([r.day, r.model]));
	return {
		from: window.from,
		to: window.to,
		window_seconds: (Date.parse(window.to) - Date.parse(window.from)) / 1000,
		totals: tidy(totals),
		by_model: [...byModel].map(([model, g]) => tidy({ model, ...g })),
		by_backend: [...byBackend].map(([k, g]) => {
			const [backend_name, backend_kind] = JSON.parse(k) as [string | null, string | null];
			return tidy({ backend_name, backend_kind, ...g });
		}),
		by_day: [...byDay].sort(([a], [b]) => a.localeCompare(b)).map(([day, g]) => tidy({ day, ...g })),
		by_model_and_day: [...byModelDay]
			.sort(([a], [b]) => a.localeCompare(b))
			.map(([k, g]) => {
				const [day, model] = JSON.parse(k) as [string, string];
				return tidy({ day, model, ...g });
			}),
		by_account: [...byAccount].map(([account, g]) => tidy({ account, ...g })),
	};
}

const usageRoute = createRoute({
	method: "get",
	path: "/v1/usage",
	tags: ["Usage"],
	summary: "Your usage over a window: jobs, GPU seconds and cost, by model, backend and UTC day",
	description: "Counts jobs that finished (succeeded, failed or canceled) within [from, to).",
	security: [{ apiKey: [] }],
	middleware: [requireKey("jobs:read")] as const,
	request: { query: UsageQuerySchema },
	responses: {
		200: { description: "Usage", content: { "application/json": { schema: UsageSchema } } },
		...problemResponses(400, 401, 403),
	},
});

const adminUsageRoute = createRoute({
	method: "get",
	path: "/v1/admin/usage",
	tags: ["Admin"],
	summary: "Usage of all accounts over a window, with a per-account breakdown",
	security: [{ adminToken: [] }],
	middleware: [requireAdmin] as const,
	request: { query: AdminUsageQuerySchema },
	responses: {
		200: { description: "Usage", content: { "application/json": { schema: AdminUsageSchema } } },
		...problemResponses(400, 401, 403),
	},
});

export const usageRoutes = newRouter()
	.openapi(usageRoute, async (c) => {
		const window = usageWindow(c.req.valid("query"));
		const { by_account: _, ...usage } = summarizeUsage(
			await usageRows(c.env.DB, window.from, window.to, c.get("caller").accountId),
			window,
		);
		return c.json(usage, 200);
	})
	.openapi(adminUsageRoute, async (c) => {
		const q = c.req.valid("query");
		const window = usageWindow(q);
		const rows = await usageRows(c.env.DB, window.from, window.to, q.account);
		// Rentals belong to backends, not accounts: an account's view has none.
		const rentals = q.account ? [] : await rentalUsage(c.env.DB, window.from, window.to, new Date().toISOString());
		return c.json({ ...summarizeUsage(rows, window), rentals: rentalsSummary(rentals, rows) }, 200);
	});
