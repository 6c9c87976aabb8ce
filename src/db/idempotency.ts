import { first, run } from "./sql";

/** How long an Idempotency-Key is remembered (published in the API docs). */
export const IDEMPOTENCY_TTL_S = 24 * 3600;
/**
 * A claim still `in_flight` after this long belongs to a request that died midway (a crash, a restart): longer
 * than any creation takes (a URL input's fetch is capped at 30 s), so a live request is never taken over.
 */
export const ABANDONED_CLAIM_MS = 60_000;

export type IdempotencyBegin =
	| { state: "new" }
	| { state: "replay"; jobId: string }
	/** The request that claimed the key died: the caller finishes its creation, under the job id it claimed. */
	| { state: "resume"; jobId: string }
	| { state: "mismatch" }
	| { state: "in_flight" };

interface IdempotencyRow {
	request_hash: string;
	job_id: string | null;
	state: "in_flight" | "done";
	created_at: string;
	expires_at: string;
}

/**
 * Claims `key` for this account and request hash, recording the id the job will have. The first caller gets `new`
 * and must call `finish` or `release`; later callers get the stored job (`replay`), `mismatch` for another body, or
 * `in_flight` while the first is still working. A claim abandoned by a request that died midway is taken over
 * (`resume`, with the claimed job id: the job may exist already), else the key would be stuck for 24 h and the
 * client could never learn whether its job was created. An expired record is replaced, as if the key were new.
 */
export async function beginIdempotent(
	db: D1Database,
	accountId: string,
	key: string,
	requestHash: string,
	now: Date,
	jobId: string,
): Promise<IdempotencyBegin> {
	const nowIso = now.toISOString();
	const expires = new Date(now.getTime() + IDEMPOTENCY_TTL_S * 1000).toISOString();
	// One statement claims a fresh key or takes over an expired one, so two racing requests cannot both win.
	const claimed = await run(
		db,
		`INSERT INTO idempotency_keys (account_id, idem_key, request_hash, job_id, state, created_at, expires_at)
		 VALUES (?, ?, ?, ?, 'in_flight', ?, ?)
		 ON CONFLICT(account_id, idem_key) DO UPDATE SET request_hash = excluded.request_hash, job_id = excluded.job_id,
		   state = 'in_flight', created_at = excluded.created_at, expires_at = excluded.expires_at
		 WHERE idempotency_keys.expires_at < ?`,
		accountId,
		key,
		requestHash,
		jobId,
		nowIso,
		expires,
		nowIso,
	);
	if (claimed.meta.changes > 0) return { state: "new" };
	const row = await first<IdempotencyRow>(
		db,
		"SELECT request_hash, job_id, state, created_at, expires_at FROM idempotency_keys WHERE account_id = ? AND idem_key = ?",
		accountId,
		key,
	);
	// Deleted between the two statements (a release): treat as in flight; the client's retry will claim it.
	if (!row) return { state: "in_flight" };
	if (row.request_hash !== requestHash) return { state: "mismatch" };
	if (row.state === "in_flight" && Date.parse(row.created_at) < now.getTime() - ABANDONED_CLAIM_MS) {
		// Conditional on the claim's time, so of two retries racing here only one takes it over.
		const taken = await first<{ job_id: string }>(
			db,
			`UPDATE idempotency_keys SET created_at = ?, job_id = COALESCE(job_id, ?)
			 WHERE account_id = ? AND idem_key = ? AND state = 'in_flight' AND created_at = ? RETURNING job_id`,
			nowIso,
			jobId,
			accountId,
			key,
			row.created_at,
		);
		if (taken) return { state: "resume", jobId: taken.job_id };
	}
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
