import { configOf } from "../config";
import {
	abortQuietly,
	COMPLETE_GRACE_MS,
	forgetParts,
	getUpload,
	markUploadFailed,
	markUploadKeysSwept,
	markUploadReady,
	recordedParts,
	type UploadRow,
	unsweptSettledUploads,
} from "../db/uploads";
import { nowIso } from "../lib/ids";
import { objectKeys, r2SignerFor } from "./index";
import { checkParts, completeParts, type StoredPart } from "./multipart";
import { pinnedKeyFor, pinObject } from "./pin";
import { verdictMessage, verifyUploadObject } from "./verify-upload";

/** How settling a pending upload ended; the route (or a URL input) turns a refusal into a problem. */
export type SettleResult =
	| { ok: true; row: UploadRow }
	/** Nothing (or not every part) is stored yet: the client may still send it. */
	| { ok: false; code: "not_ready"; message: string; missing?: number[] }
	/** A transient race: retry. */
	| { ok: false; code: "conflict"; message: string }
	/** The bytes failed a check: they are deleted and the upload is `failed`. */
	| { ok: false; code: "unprocessable"; message: string };

/**
 * The stored parts of a multipart upload: those recorded by the Worker-signed part route and, when R2 S3
 * credentials are configured, those R2 lists (parts PUT to presigned URLs never pass through the Worker).
 */
export async function storedParts(env: Env, row: UploadRow): Promise<StoredPart[]> {
	const byNumber = new Map<number, StoredPart>();
	for (const p of await recordedParts(env.DB, row.id)) {
		byNumber.set(p.part_number, { partNumber: p.part_number, etag: p.etag, size: p.size });
	}
	const r2 = r2SignerFor(env);
	if (r2 && row.multipart_upload_id) {
		for (const p of await r2.listParts(row.object_key, row.multipart_upload_id)) byNumber.set(p.partNumber, p);
	}
	return [...byNumber.values()].sort((a, b) => a.partNumber - b.partNumber);
}

/** Marks the upload failed and removes everything it stored: bytes that failed a check are never kept. */
export async function failUpload(env: Env, row: UploadRow, code: string, message: string): Promise<void> {
	await env.BUCKET.delete(row.object_key);
	if (row.multipart_upload_id) await abortQuietly(env.BUCKET, row.object_key, row.multipart_upload_id);
	await markUploadFailed(env.DB, row.id, { code, message }, nowIso());
	if (row.multipart_upload_id) await forgetParts(env.DB, row.id);
}

/**
 * Settles a pending upload: assembles a multipart upload's parts (after checking every part is there with
 * the planned size), copies the object to a key no URL can write (src/storage/pin.ts), verifies that copy (size,
 * magic bytes, media bounds, sha256) and marks the upload ready with it, or deletes everything and marks it failed.
 * A PUT that lands on the upload's own key after the copy changes nothing any consumer reads.
 */
export async function settleUpload(env: Env, row: UploadRow): Promise<SettleResult> {
	if (row.multipart_upload_id && row.part_size) {
		const assembled = await assemble(env, row, row.multipart_upload_id, row.part_size);
		if (assembled) return assembled;
	}
	const limits = configOf(env).media;
	const pinnedKey = pinnedKeyFor(row.account_id, row.id);
	const expect = { key: pinnedKey, size: row.size, contentType: row.content_type, sha256: row.sha256 };
	const pin = await pinObject(env.BUCKET, row.object_key, pinnedKey, row.size);
	if (!pin.ok) {
		if (pin.reason === "missing") return notStoredYet();
		if (pin.reason === "changed") return { ok: false, code: "conflict", message: verdictMessage(pin, expect) };
		const message = verdictMessage(pin, expect, limits);
		await failUpload(env, row, "unprocessable", message);
		return { ok: false, code: "unprocessable", message };
	}
	const verdict = await verifyUploadObject(env.BUCKET, expect, limits);
	if (verdict.ok) {
		const verified = { key: pinnedKey, etag: verdict.etag, sha256: verdict.sha256 };
		if (await markUploadReady(env.DB, row.id, verified, nowIso(), { ...verdict.media })) {
			// Nobody reads the client's key from now on.
			await env.BUCKET.delete(row.object_key);
			if (row.multipart_upload_id) await forgetParts(env.DB, row.id);
		} else {
			// A concurrent `complete` settled it first: its copy is the one the row names.
			await env.BUCKET.delete(pinnedKey);
		}
		// Re-read: either way the row is the truth.
		return { ok: true, row: (await getUpload(env.DB, row.account_id, row.id)) ?? row };
	}
	await env.BUCKET.delete(pinnedKey);
	if (verdict.reason === "missing" || verdict.reason === "changed") {
		return { ok: false, code: "conflict", message: verdictMessage({ ok: false, reason: "changed" }, expect) };
	}
	const message = verdictMessage(verdict, expect, limits);
	await failUpload(env, row, "unprocessable", message);
	return { ok: false, code: "unprocessable", message };
}

function notStoredYet(): SettleResult {
	return { ok: false, code: "not_ready", message: "No bytes uploaded yet: PUT them to the upload URL, then complete." };
}

/** Completes the multipart upload; null when the object is now assembled (or already was). */
async function assemble(env: Env, row: UploadRow, uploadId: string, partSize: number): Promise<SettleResult | null> {
	// A concurrent `complete` may have assembled it already: then the parts are gone and the object is there.
	if (await env.BUCKET.head(row.object_key)) return null;
	const parts = await storedParts(env, row);
	const problem = checkParts(row.size, partSize, parts);
	if (problem?.reason === "missing") {
		const shown = problem.parts.slice(0, 20).join(", ") + (problem.parts.length > 20 ? ", …" : "");
		return {
			ok: false,
			code: "not_ready",
			message: `${problem.parts.length} part(s) are not stored yet (${shown}): PUT them, then complete.`,
			missing: problem.parts,
		};
	}
	if (problem) {
		const message =
			problem.reason === "extra"
				? `Part ${problem.part} is beyond the declared size.`
				: `Part ${problem.part} has ${problem.actual} bytes; it must have ${problem.expected}.`;
		await failUpload(env, row, "unprocessable", message);
		return { ok: false, code: "unprocessable", message };
	}
	try {
		await completeParts(env.BUCKET, row.object_key, uploadId, parts);
	} catch (err) {
		if (await env.BUCKET.head(row.object_key)) return null;
		const message = `The parts could not be assembled: ${err instanceof Error ? err.message : String(err)}`;
		await failUpload(env, row, "unprocessable", message);
		return { ok: false, code: "unprocessable", message };
	}
	return null;
}

const SWEEP_BATCH = 500;

/**
 * Clears the client's key of settled uploads once their URLs are dead (expired more than `COMPLETE_GRACE_MS` ago, so
 * no PUT can still be landing). A PUT that finished after `complete` (an R2 presigned PUT never asks the Worker), or
 * after the upload failed, left bytes there that nothing reads. Called by the cron; returns how many were swept.
 */
export async function sweepLateWrites(env: Env, nowIso: string): Promise<number> {
	const cutoff = new Date(Date.parse(nowIso) - COMPLETE_GRACE_MS).toISOString();
	let total = 0;
	for (;;) {
		const rows = await unsweptSettledUploads(env.DB, cutoff, SWEEP_BATCH);
		if (rows.length === 0) return total;
		// The client's key, derived: a ready row's `object_key` names its verified copy, which must stay.
		await env.BUCKET.delete(rows.map((r) => objectKeys.uploadKey(r.account_id, r.id)));
		await markUploadKeysSwept(
			env.DB,
			rows.map((r) => r.id),
			nowIso,
		);
		total += rows.length;
		if (rows.length < SWEEP_BATCH) return total;
	}
}
