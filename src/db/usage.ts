import { all } from "./sql";

/** One group of a usage report. */
export interface UsageGroup {
	jobs: number;
	succeeded: number;
	failed: number;
	canceled: number;
	gpu_seconds: number;
	cost_usd: number;
}

export interface UsageRow extends UsageGroup {
	account_id: string;
	model: string;
	backend_name: string | null;
	backend_kind: string | null;
	/** The UTC day the jobs finished, `YYYY-MM-DD`. */
	day: string;
}

/**
 * Finished jobs (terminal, `completed_at` in [from, to)) grouped by account, model, backend and UTC day (the first
 * ten characters of the stored UTC timestamp); the route folds
 * these into the per-model and per-backend views. Unfinished jobs have no cost yet, so they are left out.
 */
export function usageRows(db: D1Database, from: string, to: string, accountId?: string): Promise<UsageRow[]> {
	const where = accountId ? "AND account_id = ?" : "";
	const params: unknown[] = [from, to];
	if (accountId) params.push(accountId);
	return all<UsageRow>(
		db,
		`SELECT account_id, model, backend_name, backend_kind, substr(completed_at, 1, 10) AS day,
		        COUNT(*) AS jobs,
		        SUM(CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END) AS succeeded,
		        SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS failed,
		        SUM(CASE WHEN status = 'canceled' THEN 1 ELSE 0 END) AS canceled,
		        COALESCE(SUM(gpu_seconds), 0) AS gpu_seconds,
		        COALESCE(SUM(cost_usd), 0) AS cost_usd
		   FROM jobs
		  WHERE status IN ('succeeded', 'failed', 'canceled') AND completed_at >= ? AND completed_at < ? ${where}
		  GROUP BY account_id, model, backend_name, backend_kind, day
		  ORDER BY account_id, model, backend_name, day`,
		...params,
	);
}

/** Timings of the jobs finished in a window, for percentiles (bounded: the newest `limit`). */
export interface FinishedJobTiming {
	status: string;
	backend_name: string | null;
	created_at: string;
	started_at: string | null;
	completed_at: string;
}

export function finishedJobTimings(db: D1Database, from: string, limit = 10_000): Promise<FinishedJobTiming[]> {
	return all<FinishedJobTiming>(
		db,
		`SELECT status, backend_name, created_at, started_at, completed_at FROM jobs
		  WHERE status IN ('succeeded', 'failed', 'canceled') AND completed_at >= ?
		  ORDER BY completed_at DESC LIMIT ?`,
		from,
		limit,
	);
}

/** Jobs waiting or running, per backend: the queue depth. */
export function activeJobsByBackend(
	db: D1Database,
): Promise<{ backend_name: string | null; queued: number; running: number }[]> {
	return all(
		db,
		`SELECT backend_name,
		        SUM(CASE WHEN status = 'queued' THEN 1 ELSE 0 END) AS queued,
		        SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END) AS running
		   FROM jobs WHERE status IN ('queued', 'running') GROUP BY backend_name`,
	);
}

/** Keep-warm pings per backend since `from`: how many, how many answered, and their delays. */
export function keepWarmDelays(
	db: D1Database,
	from: string,
): Promise<{ backend_name: string; status: string; delay_ms: number | null }[]> {
	return all(
		db,
		"SELECT backend_name, status, delay_ms FROM keep_warm_pings WHERE sent_at >= ? ORDER BY sent_at DESC LIMIT 5000",
		from,
	);
}
