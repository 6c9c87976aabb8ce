import type { MediaLimits } from "../config";
import { hex } from "../lib/ids";
import { audioDuration, imageDimensions, MEDIA_HEAD_BYTES, MEDIA_TAIL_BYTES, type MediaInfo } from "./media-info";
import { mediaKind, normalizeMediaType, sniff } from "./sniff";

/** What `complete` expects of the stored bytes. */
export interface UploadExpectation {
	key: string;
	size: number;
	contentType: string;
	sha256: string | null;
}

/** The outcome of checking an upload's bytes: a tagged union the route turns into problems. */
export type VerifyResult =
	/** `sha256`: the digest of the whole object, always measured (declared or not). */
	| { ok: true; etag: string; sha256: string; media: MediaInfo }
	/** No object at the key yet. */
	| { ok: false; reason: "missing" }
	/** The object was replaced while it was being read; nothing is known. */
	| { ok: false; reason: "changed" }
	| { ok: false; reason: "size"; actual: number }
	| { ok: false; reason: "type"; sniffed: string | null }
	| { ok: false; reason: "sha256"; actual: string }
	/** Image dimensions unreadable (`actual` absent) or outside the configured bounds. */
	| { ok: false; reason: "dimensions"; actual?: { width: number; height: number } }
	/** Audio longer than the configured bound. */
	| { ok: false; reason: "duration"; actual: number };

/**
 * Checks the stored object against what the upload declared: size (from `head`), type (magic bytes) and the
 * media bounds (image dimensions, audio duration) from a ranged read of the first bytes (plus the last bytes
 * for Ogg), and its sha256 (the whole object streamed through `DigestStream`, never buffered; measured even when
 * none was declared, so every consumer can be held to the exact bytes verified). Every read is bound
 * to the etag seen by `head`, so the verdict is about one version. Without `limits`, no media bounds apply.
 */
export async function verifyUploadObject(
	bucket: R2Bucket,
	expect: UploadExpectation,
	limits?: MediaLimits,
): Promise<VerifyResult> {
	const head = await bucket.head(expect.key);
	if (!head) return { ok: false, reason: "missing" };
	if (head.size !== expect.size) return { ok: false, reason: "size", actual: head.size };
	const onlyIf = { etagMatches: head.etag };

	const first = await bucket.get(expect.key, {
		range: { offset: 0, length: Math.min(MEDIA_HEAD_BYTES, head.size) },
		onlyIf,
	});
	if (!first || !("body" in first)) return { ok: false, reason: "changed" };
	const bytes = new Uint8Array(await first.arrayBuffer());
	const declared = normalizeMediaType(expect.contentType);
	const sniffed = sniff(bytes);
	if (!declared || sniffed !== declared) return { ok: false, reason: "type", sniffed };

	const media: MediaInfo = {};
	if (mediaKind(declared) === "image") {
		const dims = imageDimensions(declared, bytes);
		if (!dims) return { ok: false, reason: "dimensions" };
		Object.assign(media, dims);
		if (limits && !withinImageBounds(dims, limits)) return { ok: false, reason: "dimensions", actual: dims };
	} else {
		let tail = new Uint8Array(0);
		if (declared === "audio/ogg") {
			const last = await bucket.get(expect.key, { range: { suffix: Math.min(MEDIA_TAIL_BYTES, head.size) }, onlyIf });
			if (!last || !("body" in last)) return { ok: false, reason: "changed" };
			tail = new Uint8Array(await last.arrayBuffer());
		}
		const seconds = audioDuration(declared, bytes, tail, head.size);
		if (seconds !== undefined) {
			media.duration_s = Math.round(seconds * 1000) / 1000;
			if (limits && seconds > limits.maxAudioSeconds) return { ok: false, reason: "duration", actual: seconds };
		}
	}

	const whole = await bucket.get(expect.key, { onlyIf });
	if (!whole || !("body" in whole)) return { ok: false, reason: "changed" };
	const digest = new crypto.DigestStream("SHA-256");
	await whole.body.pipeTo(digest);
	const actual = hex(await digest.digest);
	if (expect.sha256 && actual !== expect.sha256) return { ok: false, reason: "sha256", actual };
	return { ok: true, etag: head.etag, sha256: actual, media };
}

function withinImageBounds(d: { width: number; height: number }, l: MediaLimits): boolean {
	return (
		d.width >= l.minImageWidth &&
		d.height >= l.minImageHeight &&
		d.width <= l.maxImageWidth &&
		d.height <= l.maxImageHeight
	);
}

/** The client-facing message for a failed verdict (the route and URL inputs share it). */
export function verdictMessage(
	verdict: Exclude<VerifyResult, { ok: true }>,
	expect: UploadExpectation,
	limits?: MediaLimits,
): string {
	switch (verdict.reason) {
		case "missing":
			return "No bytes are stored for this upload yet.";
		case "changed":
			return "The bytes changed while they were being verified; retry.";
		case "size":
			return `The stored object is ${verdict.actual} bytes; the upload declared ${expect.size}.`;
		case "type":
			return `The bytes are not ${expect.contentType}${verdict.sniffed ? ` (they look like ${verdict.sniffed})` : ""}.`;
		case "sha256":
			return `The bytes' SHA-256 is ${verdict.actual}; the upload declared ${expect.sha256}.`;
		case "dimensions":
			return verdict.actual
				? `The image is ${verdict.actual.width}x${verdict.actual.height}; accepted: ${limits?.minImageWidth}x${limits?.minImageHeight} to ${limits?.maxImageWidth}x${limits?.maxImageHeight}.`
				: `The image's dimensions cannot be read from its ${expect.contentType} header.`;
		case "duration":
			return `The audio is ${verdict.actual.toFixed(1)} s long; at most ${limits?.maxAudioSeconds} s is accepted.`;
	}
}
