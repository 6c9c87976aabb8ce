import { hex } from "../lib/ids";
import type { VideoOutput } from "./state";

export type VerifyResult = { ok: true; sha256: string } | { ok: false; message: string };

/**
 * Checks the video the worker says it wrote: the object exists, its size is what the worker reported, and its
 * SHA-256 (computed by streaming the object through a DigestStream, never buffering it) matches the reported one.
 */
export async function verifyVideo(bucket: R2Bucket, key: string, reported: VideoOutput): Promise<VerifyResult> {
	const head = await bucket.head(key);
	if (!head) return { ok: false, message: "The backend reported a video, but none was stored." };
	if (head.size !== reported.size) {
		return {
			ok: false,
			message: `The stored video has ${head.size} bytes; the backend reported ${reported.size}.`,
		};
	}
	const object = await bucket.get(key);
	if (!object) return { ok: false, message: "The stored video disappeared during verification." };
	const digest = new crypto.DigestStream("SHA-256");
	await object.body.pipeTo(digest);
	const sha256 = hex(await digest.digest);
	if (reported.sha256 && reported.sha256.toLowerCase() !== sha256) {
		return { ok: false, message: "The stored video's SHA-256 differs from the one the backend reported." };
	}
	return { ok: true, sha256 };
}
