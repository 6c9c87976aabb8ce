import { streamExactLength } from "./put-stream";

/**
 * Multipart planning and assembly, shared by uploads and GPU outputs. R2's rules (api-anchors §3): parts of
 * 5 MiB to 5 GiB, at most 10,000, every part but the last the same size and the last no larger. One fixed
 * part size per upload makes resume trivial: part `n` always covers the same byte range.
 */

export const MIN_PART_BYTES = 5 * 1024 * 1024;
export const MAX_PART_BYTES = 5 * 1024 * 1024 * 1024;
export const MAX_PARTS = 10_000;
const MIB = 1024 * 1024;

/** A part as the client or the listing reports it. */
export interface StoredPart {
	partNumber: number;
	etag: string;
	size: number;
}

/** The part size for `size` bytes: `preferred` (clamped to R2's bounds) grown in MiB until 10,000 parts suffice. */
export function planPartSize(size: number, preferred: number): number {
	let partSize = Math.min(MAX_PART_BYTES, Math.max(MIN_PART_BYTES, Math.floor(preferred) || MIN_PART_BYTES));
	if (Math.ceil(size / partSize) > MAX_PARTS) partSize = Math.ceil(size / MAX_PARTS / MIB) * MIB;
	return partSize;
}

/** How many parts `size` bytes take at `partSize`. */
export function partCount(size: number, partSize: number): number {
	return Math.max(1, Math.ceil(size / partSize));
}

/** The exact byte count of part `n` (1-based): `partSize`, except the last, which holds the rest. */
export function partLength(size: number, partSize: number, n: number): number {
	const count = partCount(size, partSize);
	return n < count ? partSize : size - partSize * (count - 1);
}

/** Part numbers 1..count not in `stored`. */
export function missingParts(size: number, partSize: number, stored: readonly StoredPart[]): number[] {
	const have = new Set(stored.map((p) => p.partNumber));
	const missing: number[] = [];
	for (let n = 1; n <= partCount(size, partSize); n++) if (!have.has(n)) missing.push(n);
	return missing;
}

/** Why parts cannot be assembled into the declared object. */
export type AssemblyProblem =
	| { reason: "missing"; parts: number[] }
	| { reason: "part_size"; part: number; expected: number; actual: number }
	| { reason: "extra"; part: number };

/**
 * Checks the stored parts against the plan before `complete` (R2 would refuse unequal non-trailing parts with
 * a 400 `InvalidPart`; checking first turns that into a clear message). Null when they assemble exactly.
 */
export function checkParts(size: number, partSize: number, stored: readonly StoredPart[]): AssemblyProblem | null {
	const count = partCount(size, partSize);
	const extra = stored.find((p) => p.partNumber < 1 || p.partNumber > count);
	if (extra) return { reason: "extra", part: extra.partNumber };
	const missing = missingParts(size, partSize, stored);
	if (missing.length > 0) return { reason: "missing", parts: missing };
	for (const p of stored) {
		const expected = partLength(size, partSize, p.partNumber);
		if (p.size !== expected) return { reason: "part_size", part: p.partNumber, expected, actual: p.size };
	}
	return null;
}

/** Unquoted etag: S3 clients report `"abc"`, the binding wants `abc`. */
export function bareEtag(etag: string): string {
	return etag.trim().replace(/^W\//, "").replace(/^"|"$/g, "");
}

/** Completes the multipart upload with `parts` (sorted, etags unquoted) through the R2 binding. */
export function completeParts(
	bucket: R2Bucket,
	key: string,
	uploadId: string,
	parts: readonly { partNumber: number; etag: string }[],
): Promise<R2Object> {
	const sorted = [...parts]
		.sort((a, b) => a.partNumber - b.partNumber)
		.map((p) => ({ partNumber: p.partNumber, etag: bareEtag(p.etag) }));
	return bucket.resumeMultipartUpload(key, uploadId).complete(sorted);
}

/**
 * Streams `body` of exactly `length` bytes into part `n` of a multipart upload, like `putStream` does for an
 * object: through a `FixedLengthStream`, so a short or long body fails the part instead of storing it.
 */
export async function uploadPartStream(
	bucket: R2Bucket,
	key: string,
	uploadId: string,
	n: number,
	body: ReadableStream<Uint8Array> | null,
	length: number,
): Promise<{ ok: true; etag: string } | { ok: false; reason: "length_mismatch" }> {
	if (!body || length === 0) return { ok: false, reason: "length_mismatch" };
	const sent = await streamExactLength(body, length, (readable) =>
		bucket.resumeMultipartUpload(key, uploadId).uploadPart(n, readable),
	);
	return sent.ok ? { ok: true, etag: sent.value.etag } : sent;
}
