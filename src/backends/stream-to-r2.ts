import { hex } from "../lib/ids";

/** Above this (or when the length is unknown) the body goes to R2 as a multipart upload. */
export const MULTIPART_THRESHOLD = 64 * 1024 * 1024;
/** Part size for multipart uploads (R2 wants equal parts of at least 5 MiB, except the last). */
export const PART_BYTES = 16 * 1024 * 1024;

export type StreamResult = { ok: true; size: number; sha256: string } | { ok: false; message: string };

/**
 * Streams a fetched body into R2 at `key` while hashing it, never holding the whole file: a single put through a
 * fixed-length stream when the length is known and moderate, else a multipart upload of `PART_BYTES` parts.
 */
export async function streamToR2(
	bucket: R2Bucket,
	key: string,
	body: ReadableStream<Uint8Array>,
	length: number | null,
	maxBytes: number,
	contentType = "video/mp4",
): Promise<StreamResult> {
	if (length !== null && length > maxBytes) {
		await body.cancel();
		return { ok: false, message: `The output (${length} bytes) exceeds the size limit.` };
	}
	const digest = new crypto.DigestStream("SHA-256");
	if (length !== null && length > 0 && length <= MULTIPART_THRESHOLD) {
		const [toR2, toHash] = body.tee();
		const hashing = toHash.pipeTo(digest);
		await bucket.put(key, toR2.pipeThrough(new FixedLengthStream(length)), { httpMetadata: { contentType } });
		await hashing;
		return { ok: true, size: length, sha256: hex(await digest.digest) };
	}
	const hasher = digest.getWriter();
	const upload = await bucket.createMultipartUpload(key, { httpMetadata: { contentType } });
	const parts: R2UploadedPart[] = [];
	// R2 needs every part but the last to have the same size: fill a fixed buffer exactly, carry the rest over.
	let part = new Uint8Array(PART_BYTES);
	let buffered = 0;
	let size = 0;
	const flush = async () => {
		parts.push(await upload.uploadPart(parts.length + 1, part.subarray(0, buffered)));
		part = new Uint8Array(PART_BYTES);
		buffered = 0;
	};
	try {
		const reader = body.getReader();
		for (;;) {
			const { done, value } = await reader.read();
			if (done) break;
			size += value.byteLength;
			if (size > maxBytes) {
				await reader.cancel();
				throw new Error(`The output exceeds the size limit (${maxBytes} bytes).`);
			}
			await hasher.write(value);
			let at = 0;
			while (at < value.byteLength) {
				const n = Math.min(PART_BYTES - buffered, value.byteLength - at);
				part.set(value.subarray(at, at + n), buffered);
				buffered += n;
				at += n;
				if (buffered === PART_BYTES) await flush();
			}
		}
		if (buffered > 0 || parts.length === 0) await flush();
		await hasher.close();
		await upload.complete(parts);
		return { ok: true, size, sha256: hex(await digest.digest) };
	} catch (err) {
		await upload.abort().catch(() => undefined);
		return { ok: false, message: err instanceof Error ? err.message : "The output could not be stored." };
	}
}
