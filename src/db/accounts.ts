import type { ApiKeyRow } from "./keys";
import { first, run } from "./sql";

/** An account's own limits, as `accounts` stores them (NULL: the Worker default, src/limits/config.ts). */
export interface AccountLimitOverrides {
	requests_per_minute: number | null;
	jobs_per_minute: number | null;
	max_concurrent_jobs: number | null;
	monthly_spend_cap_usd: number | null;
}

/** An API key with its account's limit overrides: what the auth middleware needs, in one query. */
export type ApiKeyWithLimits = ApiKeyRow & AccountLimitOverrides;

export function findKeyWithLimits(db: D1Database, keyHash: string): Promise<ApiKeyWithLimits | null> {
	return first<ApiKeyWithLimits>(
		db,
		`SELECT k.*, a.requests_per_minute, a.jobs_per_minute, a.max_concurrent_jobs, a.monthly_spend_cap_usd
		   FROM api_keys k LEFT JOIN accounts a ON a.id = k.account_id
		  WHERE k.key_hash = ?`,
		keyHash,
	);
}

/** The account's overrides, or null when there is no such account. */
export function getAccountLimits(db: D1Database, accountId: string): Promise<AccountLimitOverrides | null> {
	return first<AccountLimitOverrides>(
		db,
		`SELECT requests_per_minute, jobs_per_minute, max_concurrent_jobs, monthly_spend_cap_usd
		   FROM accounts WHERE id = ?`,
		accountId,
	);
}

/** Sets the given overrides (null: back to the default); fields left out keep their value. False: no such account. */
export async function updateAccountLimits(
	db: D1Database,
	accountId: string,
	changes: Partial<AccountLimitOverrides>,
): Promise<boolean> {
	// Column names come from this fixed list, never from the request.
	const columns = (
		["requests_per_minute", "jobs_per_minute", "max_concurrent_jobs", "monthly_spend_cap_usd"] as const
	).filter((c) => changes[c] !== undefined);
	if (columns.length === 0) return (await getAccountLimits(db, accountId)) !== null;
	const result = await run(
		db,
		`UPDATE accounts SET ${columns.map((c) => `${c} = ?`).join(", ")} WHERE id = ?`,
		...columns.map((c) => changes[c] ?? null),
		accountId,
	);
	return result.meta.changes > 0;
}

/** The account's recorded cost of jobs finished in [from, to). */
export async function spendBetween(db: D1Database, accountId: string, from: string, to: string): Promise<number> {
	const row = await first<{ usd: number }>(
		db,
		`SELECT COALESCE(SUM(cost_usd), 0) AS usd FROM jobs
		  WHERE account_id = ? AND completed_at >= ? AND completed_at < ?`,
		accountId,
		from,
		to,
	);
	return Math.round((row?.usd ?? 0) * 1e6) / 1e6;
}
