import type { JobSnapshot } from "../jobs/record";
import type { JobStatus } from "../schemas/jobs";
import { all, first, run } from "./sql";

/**
 * Mirrors a job's snapshot into the D1 index (insert on first sight, update after). Writes can land out of order
 * (an alarm step's mirror racing a cancel's), so an older snapshot never replaces a newer one, and a terminal
 * row is final.
 */
export async function upsertJobIndex(db: D1Database, job: JobSnapshot): Promise<void> {
	await run(
		db,
		`INSERT INTO jobs (id, account_id, status, model, backend_name, backend_kind, attempts, error_code, gpu_seconds,
		   cost_usd, created_at, started_at, completed_at, updated_at, snapshot)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		 ON CONFLICT(id) DO UPDATE SET status = excluded.status, backend_name = excluded.backend_name,
		   backend_kind = excluded.backend_kind, attempts = excluded.attempts, error_code = excluded.error_code,
		   gpu_seconds = excluded.gpu_seconds, cost_usd = excluded.cost_usd, started_at = excluded.started_at,
		   completed_at = excluded.completed_at, updated_at = excluded.updated_at, snapshot = excluded.snapshot
		 WHERE jobs.status IN ('queued', 'running') AND excluded.updated_at >= jobs.updated_at`,
		job.id,
		job.account_id,
		job.status,
		job.model,
		job.backend.name,
		job.backend.kind,
		job.attempts,
		job.error?.code ?? null,
		job.cost?.gpu_seconds ?? null,
		job.cost?.usd ?? null,
		job.created_at,
		job.started_at,
		job.completed_at,
		job.updated_at,
		JSON.stringify(job),
	);
}

export interface JobCursor {
	created_at: string;
	id: string;
}

/**
 * One page of an account's jobs, newest first, keyset-paginated on (created_at, id): stable while jobs are
 * added, and no OFFSET scans. Returns up to `limit` snapshots and the cursor of the last one when more exist.
 */
export async function listJobs(
	db: D1Database,
	accountId: string,
	options: { status?: JobStatus; limit: number; after?: JobCursor },
): Promise<{ jobs: JobSnapshot[]; next: JobCursor | null }> {
	const where = ["account_id = ?"];
	const params: unknown[] = [accountId];
	if (options.status) {
		where.push("status = ?");
		params.push(options.status);
	}
	if (options.after) {
		where.push("(created_at < ? OR (created_at = ? AND id < ?))");
		params.push(options.after.created_at, options.after.created_at, options.after.id);
	}
	const rows = await all<{ id: string; created_at: string; snapshot: string | null }>(
		db,
		`SELECT id, created_at, snapshot FROM jobs WHERE ${where.join(" AND ")}
		 ORDER BY created_at DESC, id DESC LIMIT ?`,
		...params,
		options.limit + 1,
	);
	const page = rows.slice(0, options.limit);
	const jobs = page.flatMap((r) => (r.snapshot ? [JSON.parse(r.snapshot) as JobSnapshot] : []));
	const last = page.at(-1);
	return { jobs, next: rows.length > options.limit && last ? { created_at: last.created_at, id: last.id } : null };
}

/** The account that owns a job, from the index; null when the id is unknown. */
export async function getJobAccount(db: D1Database, id: string): Promise<string | null> {
	const row = await first<{ account_id: string }>(db, "SELECT account_id FROM jobs WHERE id = ?", id);
	return row?.account_id ?? null;
}
