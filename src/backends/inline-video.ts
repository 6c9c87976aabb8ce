import type { VideoOutput } from "../jobs/state";
import { hex } from "../lib/ids";

/** Base64 characters decoded per chunk: a multiple of 4, so every chunk decodes on its own (48 KiB of bytes). */
const CHUNK_CHARS = 64 * 1024;

/** Bytes a base64 string decodes to (padding and whitespace excluded); null when it is not valid base64. */
export function base64DecodedSize(b64: string): number | null {
	if (b64.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) return null;
	const padding = b64.endsWith("==") ? 2 : b64.endsWith("=") ? 1 : 0;
	return (b64.length / 4) * 3 - padding;
}

function decodeChunk(chunk: string): Uint8Array {
	const bin = atob(chunk);
	const out = new Uint8Array(bin.length);
	for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
	return out;
}

export type InlineStoreResult = { ok: true; video: VideoOutput } | { ok: false; message: string };

/**
 * Stores a video an older RunPod handler returned inline (`output.video_base64`) at `key`. The string is decoded
 * chunk by chunk into a fixed-length stream that R2 consumes while a DigestStream hashes the same bytes, so the
 * decoded video is never held whole in memory next to its base64 text. Returns what the Worker's verification
 * expects: size and SHA-256 of the stored bytes.
 */
export async function storeInlineVideo(
	bucket: R2Bucket,
	key: string,
	base64: string,
	meta: Partial<VideoOutput> = {},
	maxBytes = Number.POSITIVE_INFINITY,
): Promise<InlineStoreResult> {
	const b64 = base64.replace(/^data:[^,]*,/, "").replace(/\s+/g, "");
	const size = base64DecodedSize(b64);
	if (size === null || size === 0) return { ok: false, message: "The backend returned an unreadable inline video." };
	if (size > maxBytes) return { ok: false, message: `The inline video (${size} bytes) exceeds the size limit.` };
	const fixed = new FixedLengthStream(size);
	const digest = new crypto.DigestStream("SHA-256");
	const [toR2, toHash] = fixed.readable.tee();
	const hashing = toHash.pipeTo(digest);
	const storing = bucket.put(key, toR2, { httpMetadata: { contentType: "video/mp4" } });
	const writer = fixed.writable.getWriter();
	for (let at = 0; at < b64.length; at += CHUNK_CHARS) {
		await writer.write(decodeChunk(b64.slice(at, at + CHUNK_CHARS)));
	}
	await writer.close();
	await Promise.all([storing, hashing]);
	return {
		ok: true,
		video: { ...meta, content_type: "video/mp4", size, sha256: hex(await digest.digest) },
	};
}
