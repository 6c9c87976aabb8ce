import { first, run } from "./sql";

/** How long an Idempotency-Key is remembered (published in the API docs). */
export const IDEMPOTENCY_TTL_S = 24 * 3600;

export type IdempotencyBegin =
	| { state: "new" }
	| { state: "replay"; jobId: string }
	| { state: "mismatch" }
	| { state: "in_flight" };

interface IdempotencyRow {
	request_hash: string;
	job_id: string | null;
	state: "in_flight" | "done";
	expires_at: string;
}

/**
 * Claims `key` for this account and request hash. The first caller gets `new` and must call `finish` or
 * `release`; later callers get the stored job (`replay`), `mismatch` for another body, or `in_flight` while the
 * first is still working. An expired record is replaced, as if the key were new.
 */
export async function beginIdempotent(
	db: D1Database,
	accountId: string,
	key: string,
	requestHash: string,
	now: Date,
): Promise<IdempotencyBegin> {
	const nowIso = now.toISOString();
	const expires = new Date(now.getTime() + IDEMPOTENCY_TTL_S * 1000).toISOString();
	// One statement claims a fresh key or takes over an expired one, so two racing requests cannot both win.
	const claimed = await run(
		db,
		`INSERT INTO idempotency_keys (account_id, idem_key, request_hash, job_id, state, created_at, expires_at)
		 VALUES (?, ?, ?, NULL, 'in_flight', ?, ?)
		 ON CONFLICT(account_id, idem_key) DO UPDATE SET request_hash = excluded.request_hash, job_id = NULL,
		   state = 'in_flight', created_at = excluded.created_at, expires_at = excluded.expires_at
		 WHERE idempotency_keys.expires_at < ?`,
		accountId,
		key,
		requestHash,
		nowIso,
		expires,
		nowIso,
	);
	if (claimed.meta.changes > 0) return { state: "new" };
	const row = await first<IdempotencyRow>(
		db,
		"SELECT request_hash, job_id, state, expires_at FROM idempotency_keys WHERE account_id = ? AND idem_key = ?",
		accountId,
		key,
	);
	// Deleted between the two statements (a release): treat as in flight; the client's retry will claim it.
	if (!row) return { state: "in_flight" };
	if (row.request_hash !== requestHash) return { state: "mismatch" };
	if (row.state === "in_flight" || !row.job_id) return { state: "in_flight" };
	return { state: "replay", jobId: row.job_id };
}

/** Records the job a claimed key produced. */
export async function finishIdempotent(db: D1Database, accountId: string, key: string, jobId: string): Promise<void> {
	await run(
		db,
		"UPDATE idempotency_keys SET job_id = ?, state = 'done' WHERE account_id = ? AND idem_key = ?",
		jobId,
		accountId,
		key,
	);
}

/** Forgets a claim whose request failed, so the client may retry with the same key (as Stripe does). */
export async function releaseIdempotent(db: D1Database, accountId: string, key: string): Promise<void> {
	await run(
		db,
		"DELETE FROM idempotency_keys WHERE account_id = ? AND idem_key = ? AND state = 'in_flight'",
		accountId,
		key,
	);
}
