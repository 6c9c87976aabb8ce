import { hex } from "../lib/ids";
import { matchesDeclaredType, SNIFF_BYTES, sniff } from "./sniff";

/** What `complete` expects of the stored bytes. */
export interface UploadExpectation {
	key: string;
	size: number;
	contentType: string;
	sha256: string | null;
}

/** The outcome of checking an upload's bytes: a tagged union the route turns into problems. */
export type VerifyResult =
	| { ok: true; etag: string }
	/** No object at the key yet. */
	| { ok: false; reason: "missing" }
	/** The object was replaced while it was being read; nothing is known. */
	| { ok: false; reason: "changed" }
	| { ok: false; reason: "size"; actual: number }
	| { ok: false; reason: "type"; sniffed: string | null }
	| { ok: false; reason: "sha256"; actual: string };

/**
 * Checks the stored object against what the upload declared: size (from `head`), type (magic bytes from a
 * ranged read of the first bytes) and sha256 (the whole object streamed through `DigestStream`, never
 * buffered). Every read is bound to the etag seen by `head`, so the verdict is about one version.
 */
export async function verifyUploadObject(bucket: R2Bucket, expect: UploadExpectation): Promise<VerifyResult> {
	const head = await bucket.head(expect.key);
	if (!head) return { ok: false, reason: "missing" };
	if (head.size !== expect.size) return { ok: false, reason: "size", actual: head.size };
	const onlyIf = { etagMatches: head.etag };

	const first = await bucket.get(expect.key, {
		range: { offset: 0, length: Math.min(SNIFF_BYTES, head.size) },
		onlyIf,
	});
	if (!first || !("body" in first)) return { ok: false, reason: "changed" };
	const bytes = new Uint8Array(await first.arrayBuffer());
	if (!matchesDeclaredType(bytes, expect.contentType)) return { ok: false, reason: "type", sniffed: sniff(bytes) };

	if (expect.sha256) {
		const whole = await bucket.get(expect.key, { onlyIf });
		if (!whole || !("body" in whole)) return { ok: false, reason: "changed" };
		const digest = new crypto.DigestStream("SHA-256");
		await whole.body.pipeTo(digest);
		const actual = hex(await digest.digest);
		if (actual !== expect.sha256) return { ok: false, reason: "sha256", actual };
	}
	return { ok: true, etag: head.etag };
}
