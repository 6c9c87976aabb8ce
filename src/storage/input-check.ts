import type { JobSpec, UploadRef } from "../jobs/record";

/**
 * Whether the bytes a job will read are still the ones `complete` verified. They sit under a key no URL can write
 * (src/storage/pin.ts), so a difference means storage was changed behind the API; the job must not run on them.
 * Jobs from before etags were kept on the spec have nothing to compare and pass.
 *
 * Returns the client-facing reason (naming the input, never a key or URL), or null when every input matches.
 */
export async function changedInput(bucket: R2Bucket, inputs: JobSpec["inputs"]): Promise<string | null> {
	const refs: [string, UploadRef | undefined][] = [
		["inputs.image", inputs.image],
		["inputs.audio", inputs.audio],
	];
	for (const [field, ref] of refs) {
		if (!ref?.etag) continue;
		const head = await bucket.head(ref.object_key);
		if (!head) return `${field}: the verified bytes of upload ${ref.upload_id} are no longer stored.`;
		if (head.etag !== ref.etag) {
			return `${field}: the stored bytes of upload ${ref.upload_id} are not the ones verified at upload (sha256 ${ref.sha256 ?? "unknown"}).`;
		}
	}
	return null;
}

/** R2's read condition that pins a read of an input to its verified version (none for jobs from before). */
export function verifiedReadCondition(ref: UploadRef): R2GetOptions {
	return ref.etag ? { onlyIf: { etagMatches: ref.etag } } : {};
}
