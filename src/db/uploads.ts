import { all, first, run } from "./sql";

export type UploadStatus = "pending" | "ready" | "failed" | "expired";

/** A row of `uploads` (migrations 0001, 0002). `error` is JSON `{ code, message }` when the upload failed. */
export interface UploadRow {
	id: string;
	account_id: string;
	filename: string;
	content_type: string;
	size: number;
	sha256: string | null;
	status: UploadStatus;
	object_key: string;
	error: string | null;
	etag: string | null;
	created_at: string;
	expires_at: string;
	completed_at: string | null;
}

/** A verified upload, as the jobs engine needs it. */
export interface ReadyUpload {
	id: string;
	object_key: string;
	content_type: string;
	size: number;
	sha256: string | null;
	/** The R2 etag of the verified bytes (null only for rows verified before migration 0002). */
	etag: string | null;
}

/**
 * How long after its URL expired a pending upload may still be completed: a PUT that started just before
 * the expiry must get the chance to finish and be verified before the cron deletes it.
 */
export const COMPLETE_GRACE_MS = 15 * 60 * 1000;

export async function insertUpload(
	db: D1Database,
	row: Pick<
		UploadRow,
		"id" | "account_id" | "filename" | "content_type" | "size" | "sha256" | "object_key" | "created_at" | "expires_at"
	>,
): Promise<void> {
	await run(
		db,
		`INSERT INTO uploads (id, account_id, filename, content_type, size, sha256, status, object_key, created_at, expires_at)
		 VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)`,
		row.id,
		row.account_id,
		row.filename,
		row.content_type,
		row.size,
		row.sha256,
		row.object_key,
		row.created_at,
		row.expires_at,
	);
}

/** The upload of `accountId`; another account's upload reads as absent. */
export function getUpload(db: D1Database, accountId: string, uploadId: string): Promise<UploadRow | null> {
	return first<UploadRow>(db, "SELECT * FROM uploads WHERE id = ? AND account_id = ?", uploadId, accountId);
}

/** The status of the upload stored at `objectKey`, for the storage route's PUT guard. */
export async function uploadStatusByKey(db: D1Database, objectKey: string): Promise<UploadStatus | null> {
	const row = await first<{ status: UploadStatus }>(db, "SELECT status FROM uploads WHERE object_key = ?", objectKey);
	return row?.status ?? null;
}

/**
 * A verified upload of `accountId` that a job may use, or null (absent, another account's, or not ready).
 * Read the bytes from `BUCKET` at `object_key`.
 */
export function getReadyUpload(db: D1Database, accountId: string, uploadId: string): Promise<ReadyUpload | null> {
	return first<ReadyUpload>(
		db,
		`SELECT id, object_key, content_type, size, sha256, etag FROM uploads
		 WHERE id = ? AND account_id = ? AND status = 'ready'`,
		uploadId,
		accountId,
	);
}

/** pending → ready. False when another request settled the upload first. */
export async function markUploadReady(db: D1Database, id: string, etag: string, now: string): Promise<boolean> {
	const result = await run(
		db,
		"UPDATE uploads SET status = 'ready', etag = ?, completed_at = ?, error = NULL WHERE id = ? AND status = 'pending'",
		etag,
		now,
		id,
	);
	return result.meta.changes > 0;
}

/** pending → failed, keeping why. */
export async function markUploadFailed(
	db: D1Database,
	id: string,
	error: { code: string; message: string },
	now: string,
): Promise<void> {
	await run(
		db,
		"UPDATE uploads SET status = 'failed', error = ?, completed_at = ? WHERE id = ? AND status = 'pending'",
		JSON.stringify(error),
		now,
		id,
	);
}

const EXPIRE_BATCH = 500;

/**
 * Marks pending uploads whose URL expired more than `COMPLETE_GRACE_MS` before `nowIso` as `expired` and
 * deletes whatever bytes they have in R2. Works in batches until none is left; returns how many expired.
 * Called by the cron (`src/scheduled.ts`).
 */
export async function expirePendingUploads(env: Env, nowIso: string): Promise<number> {
	const cutoff = new Date(Date.parse(nowIso) - COMPLETE_GRACE_MS).toISOString();
	let total = 0;
	for (;;) {
		const rows = await all<{ id: string; object_key: string }>(
			env.DB,
			"SELECT id, object_key FROM uploads WHERE status = 'pending' AND expires_at < ? LIMIT ?",
			cutoff,
			EXPIRE_BATCH,
		);
		if (rows.length === 0) return total;
		// Mark first: once expired, the storage route refuses PUTs to the key, so the delete cannot be raced.
		await env.DB.batch(
			rows.map((r) =>
				env.DB.prepare("UPDATE uploads SET status = 'expired' WHERE id = ? AND status = 'pending'").bind(r.id),
			),
		);
		await env.BUCKET.delete(rows.map((r) => r.object_key));
		total += rows.length;
		if (rows.length < EXPIRE_BATCH) return total;
	}
}
