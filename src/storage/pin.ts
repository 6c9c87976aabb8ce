import { objectKeys } from "./index";
import { putStream } from "./put-stream";

/**
 * Why an upload's bytes are copied before they are verified: every URL a client gets (a Worker-signed PUT, an R2
 * presigned PUT, a part URL) is bound to the upload's own key, and a PUT that was already streaming when
 * `complete` ran may still land there afterwards. The copy lives under a key that no URL is ever signed for, so
 * once it is verified nothing outside this Worker can change it; every consumer reads the copy.
 */

/** The outcome of copying the client's object to its pinned key. */
export type PinResult =
	| { ok: true; key: string }
	/** Nothing stored at the upload's key yet. */
	| { ok: false; reason: "missing" }
	/** The stored object is not the declared size (nothing was copied). */
	| { ok: false; reason: "size"; actual: number }
	/** The object was replaced while it was being copied: nothing is kept. */
	| { ok: false; reason: "changed" };

/**
 * Copies the object at `from` to `to` (a key only this Worker writes), bound to the version `head` saw. Streamed
 * end to end, never buffered. The copy's own etag is what verification then records.
 */
export async function pinObject(bucket: R2Bucket, from: string, to: string, expectedSize: number): Promise<PinResult> {
	const head = await bucket.head(from);
	if (!head) return { ok: false, reason: "missing" };
	if (head.size !== expectedSize) return { ok: false, reason: "size", actual: head.size };
	const source = await bucket.get(from, { onlyIf: { etagMatches: head.etag } });
	if (!source || !("body" in source)) return { ok: false, reason: "changed" };
	const stored = await putStream(bucket, to, source.body, head.size, { httpMetadata: head.httpMetadata });
	if (!stored.ok) return { ok: false, reason: "changed" };
	return { ok: true, key: to };
}

/** A fresh key for the pinned copy of an upload: one per attempt, so two concurrent `complete`s never share one. */
export function pinnedKeyFor(accountId: string, uploadId: string): string {
	const nonce = crypto.getRandomValues(new Uint8Array(8));
	const suffix = Array.from(nonce, (b) => b.toString(16).padStart(2, "0")).join("");
	return objectKeys.verifiedKey(accountId, uploadId, suffix);
}
