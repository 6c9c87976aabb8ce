import { all, first, run } from "./sql";

export type UploadStatus = "pending" | "ready" | "failed" | "expired";

/**
 * A row of `uploads` (migrations 0001, 0002, 0004, 0009). `error` is JSON `{ code, message }` when the upload failed.
 * `upload_key_swept_at` (0009) is read only by the cron's sweep of late writes.
 */
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
	/** The R2 multipart upload id (migration 0004); null for a single PUT. */
	multipart_upload_id?: string | null;
	/** The size of every part but the last; null for a single PUT. */
	part_size?: number | null;
	/** Where a URL input was fetched from. */
	source_url?: string | null;
	/** JSON `{ width?, height?, duration_s? }` measured at verification. */
	media?: string | null;
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
	/** JSON `{ width?, height?, duration_s? }` measured at verification (null on rows older than the measuring). */
	media?: string | null;
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
	> &
		Partial<Pick<UploadRow, "multipart_upload_id" | "part_size" | "source_url">>,
): Promise<void> {
	await run(
		db,
		`INSERT INTO uploads (id, account_id, filename, content_type, size, sha256, status, object_key, created_at, expires_at,
		   multipart_upload_id, part_size, source_url)
		 VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?)`,
		row.id,
		row.account_id,
		row.filename,
		row.content_type,
		row.size,
		row.sha256,
		row.object_key,
		row.created_at,
		row.expires_at,
		row.multipart_upload_id ?? null,
		row.part_size ?? null,
		row.source_url ?? null,
	);
}

/** The upload of `accountId`; another account's upload reads as absent. */
export function getUpload(db: D1Database, accountId: string, uploadId: string): Promise<UploadRow | null> {
	return first<UploadRow>(db, "SELECT * FROM uploads WHERE id = ? AND account_id = ?", uploadId, accountId);
}

/**
 * The status of the upload whose signed URLs write `objectKey` (`uploads/{account}/{upload}`), for the storage
 * route's PUT guard. Looked up by the upload's id, since a ready upload's `object_key` names its pinned copy.
 */
export async function uploadStatusByKey(db: D1Database, objectKey: string): Promise<UploadStatus | null> {
	const m = /^uploads\/([^/]+)\/([^/]+)$/.exec(objectKey);
	if (!m) return null;
	const row = await first<{ status: UploadStatus }>(
		db,
		"SELECT status FROM uploads WHERE id = ? AND account_id = ?",
		m[2],
		m[1],
	);
	return row?.status ?? null;
}

/**
 * A verified upload of `accountId` that a job may use, or null (absent, another account's, or not ready).
 * Read the bytes from `BUCKET` at `object_key`.
 */
export function getReadyUpload(db: D1Database, accountId: string, uploadId: string): Promise<ReadyUpload | null> {
	return first<ReadyUpload>(
		db,
		`SELECT id, object_key, content_type, size, sha256, etag, media FROM uploads
		 WHERE id = ? AND account_id = ? AND status = 'ready'`,
		uploadId,
		accountId,
	);
}

/**
 * pending → ready, with what verification measured: `verified.key` is the pinned copy (src/storage/pin.ts) every
 * consumer reads from then on, `etag` and `sha256` those of its bytes. False when another request settled the
 * upload first.
 */
export async function markUploadReady(
	db: D1Database,
	id: string,
	verified: { key: string; etag: string; sha256: string },
	now: string,
	media: Record<string, number> = {},
): Promise<boolean> {
	const result = await run(
		db,
		`UPDATE uploads SET status = 'ready', object_key = ?, etag = ?, sha256 = ?, completed_at = ?, media = ?, error = NULL
		 WHERE id = ? AND status = 'pending'`,
		verified.key,
		verified.etag,
		verified.sha256,
		now,
		JSON.stringify(media),
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

/**
 * The newest ready upload of `accountId` with this sha256 and type, for dedup: the same bytes are not
 * transferred twice.
 */
export function findReadyBySha256(
	db: D1Database,
	accountId: string,
	sha256: string,
	contentType: string,
): Promise<UploadRow | null> {
	return first<UploadRow>(
		db,
		`SELECT * FROM uploads WHERE account_id = ? AND sha256 = ? AND content_type = ? AND status = 'ready'
		 ORDER BY created_at DESC LIMIT 1`,
		accountId,
		sha256,
		contentType,
	);
}

/** A part stored through a Worker-signed part URL. */
export interface PartRow {
	part_number: number;
	etag: string;
	size: number;
}

/** Records (or replaces, on a retried part) a stored part of a multipart upload. */
export async function recordPart(db: D1Database, uploadId: string, part: PartRow, now: string): Promise<void> {
	await run(
		db,
		`INSERT INTO upload_parts (upload_id, part_number, etag, size, created_at) VALUES (?, ?, ?, ?, ?)
		 ON CONFLICT (upload_id, part_number) DO UPDATE SET etag = excluded.etag, size = excluded.size, created_at = excluded.created_at`,
		uploadId,
		part.part_number,
		part.etag,
		part.size,
		now,
	);
}

/** The parts recorded for an upload, by number. */
export function recordedParts(db: D1Database, uploadId: string): Promise<PartRow[]> {
	return all<PartRow>(
		db,
		"SELECT part_number, etag, size FROM upload_parts WHERE upload_id = ? ORDER BY part_number",
		uploadId,
	);
}

/** Drops the part records of a settled upload (the parts themselves are assembled or aborted by then). */
export async function forgetParts(db: D1Database, uploadId: string): Promise<void> {
	await run(db, "DELETE FROM upload_parts WHERE upload_id = ?", uploadId);
}

/** The pending upload stored at `objectKey`, for the storage route's part PUTs. */
export function pendingUploadByKey(db: D1Database, objectKey: string): Promise<UploadRow | null> {
	return first<UploadRow>(db, "SELECT * FROM uploads WHERE object_key = ? AND status = 'pending'", objectKey);
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
		const rows = await all<{ id: string; object_key: string; multipart_upload_id: string | null }>(
			env.DB,
			"SELECT id, object_key, multipart_upload_id FROM uploads WHERE status = 'pending' AND expires_at < ? LIMIT ?",
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
		// Abandoned multipart uploads hold their parts' storage until aborted (R2 would only do it after 7 days).
		for (const r of rows) {
			if (r.multipart_upload_id) await abortQuietly(env.BUCKET, r.object_key, r.multipart_upload_id);
		}
		await env.DB.batch(rows.map((r) => env.DB.prepare("DELETE FROM upload_parts WHERE upload_id = ?").bind(r.id)));
		total += rows.length;
		if (rows.length < EXPIRE_BATCH) return total;
	}
}

/**
 * Settled uploads whose own key (`uploads/{account}/{upload}`) has not been cleared since their URLs died (expired
 * before `cutoff`): ready ones whose bytes were pinned under `verified/`, and failed ones. Ready uploads from before
 * pinning read their own key and are never listed. For `sweepLateWrites` (src/storage/settle.ts).
 */
export function unsweptSettledUploads(
	db: D1Database,
	cutoff: string,
	limit: number,
): Promise<{ id: string; account_id: string }[]> {
	return all<{ id: string; account_id: string }>(
		db,
		`SELECT id, account_id FROM uploads
		 WHERE upload_key_swept_at IS NULL AND expires_at < ?
		   AND ((status = 'ready' AND object_key LIKE 'verified/%') OR status = 'failed')
		 LIMIT ?`,
		cutoff,
		limit,
	);
}

/** Records that these uploads' own keys were cleared (migration 0009): each is swept once. */
export async function markUploadKeysSwept(db: D1Database, ids: string[], now: string): Promise<void> {
	if (ids.length === 0) return;
	await db.batch(ids.map((id) => db.prepare("UPDATE uploads SET upload_key_swept_at = ? WHERE id = ?").bind(now, id)));
}

/** Aborts a multipart upload; one that is already completed, aborted or unknown is not an error here. */
export async function abortQuietly(bucket: R2Bucket, key: string, uploadId: string): Promise<void> {
	try {
		await bucket.resumeMultipartUpload(key, uploadId).abort();
	} catch {
		// Already gone: nothing to free.
	}
}
