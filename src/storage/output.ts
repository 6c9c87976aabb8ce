import { signerFor } from "./index";
import { bareEtag, completeParts, partCount, partLength } from "./multipart";

/**
 * Where a GPU worker puts a job's video, per docs/gpu-job-protocol.md: `put` (one PUT) and, when the video may
 * be larger than one part, `multipart` (part URLs, every part but the last exactly `part_size`). Signed by the
 * same signer as uploads: R2 presigned URLs with R2 S3 credentials, else Worker-signed URLs.
 */
export interface OutputTarget {
	put: { url: string; headers: Record<string, string> };
	multipart?: {
		part_size: number;
		parts: { part_number: number; url: string; headers: Record<string, string> }[];
	};
}

export interface SignOutputOptions {
	/** The largest video accepted (`MAX_VIDEO_BYTES`). R2 presigned PUTs cannot cap it: check `head` after. */
	maxSize: number;
	expiresInS: number;
	/** Default `video/mp4`. */
	contentType?: string;
	/** Default 64 MiB, the protocol's example. */
	partSize?: number;
}

/** The default part size of output videos. */
export const OUTPUT_PART_BYTES = 64 * 1024 * 1024;

/**
 * Signs the `output` object of a job's GPU request. When `maxSize` exceeds one part, an R2 multipart upload is
 * created at `key` (its id comes back as `multipart_upload_id`: keep it, then call `completeOutputMultipart`
 * with the worker's reported parts, or `abortOutputMultipart` when the worker used `put` or failed).
 */
export async function signOutputTarget(
	env: Env,
	origin: string,
	key: string,
	options: SignOutputOptions,
): Promise<{ output: OutputTarget; multipart_upload_id: string | null }> {
	const signer = signerFor(env, origin);
	const contentType = options.contentType ?? "video/mp4";
	const partSize = options.partSize ?? OUTPUT_PART_BYTES;
	// Create-only: once a video is stored (and verified when the job settles), no PUT may replace it, not even a
	// repeat of the same submission's URL within its lifetime.
	const put = await signer.signPut(key, {
		contentType,
		maxSize: options.maxSize,
		expiresInS: options.expiresInS,
		createOnly: true,
	});
	const output: OutputTarget = { put: { url: put.url, headers: put.headers } };
	if (options.maxSize <= partSize) return { output, multipart_upload_id: null };

	const multipart = await env.BUCKET.createMultipartUpload(key, { httpMetadata: { contentType } });
	const count = partCount(options.maxSize, partSize);
	const parts = await Promise.all(
		Array.from({ length: count }, async (_, i) => {
			const n = i + 1;
			// The last part's size is unknown until the video exists: cap each part instead of fixing it.
			const maxSize = Math.max(partLength(options.maxSize, partSize, n), n < count ? partSize : 0);
			const signed = await signer.signPart(key, multipart.uploadId, n, {
				maxSize,
				expiresInS: options.expiresInS,
			});
			return { part_number: n, url: signed.url, headers: signed.headers };
		}),
	);
	output.multipart = { part_size: partSize, parts };
	return { output, multipart_upload_id: multipart.uploadId };
}

/** Why an output's parts could not be completed. */
export type CompleteOutputResult =
	| { ok: true; object: R2Object }
	| { ok: false; reason: "no_parts" | "gap" | "failed"; message: string };

/**
 * Completes the video's multipart upload with the parts the GPU worker reported (`{ part_number, etag }`,
 * etags quoted or not). Parts must be 1..n without gaps; R2 itself refuses unequal non-trailing parts.
 */
export async function completeOutputMultipart(
	env: Env,
	key: string,
	uploadId: string,
	parts: readonly { part_number: number; etag: string }[],
): Promise<CompleteOutputResult> {
	if (parts.length === 0) return { ok: false, reason: "no_parts", message: "The worker reported no parts." };
	const sorted = [...parts].sort((a, b) => a.part_number - b.part_number);
	if (sorted.some((p, i) => p.part_number !== i + 1)) {
		return { ok: false, reason: "gap", message: "The reported parts are not numbered 1..n without gaps." };
	}
	try {
		const object = await completeParts(
			env.BUCKET,
			key,
			uploadId,
			sorted.map((p) => ({ partNumber: p.part_number, etag: bareEtag(p.etag) })),
		);
		return { ok: true, object };
	} catch (err) {
		return { ok: false, reason: "failed", message: `R2 refused the parts: ${String(err).slice(0, 300)}` };
	}
}

/** Frees an output multipart upload that will not be completed (the worker used `put`, or failed). */
export async function abortOutputMultipart(env: Env, key: string, uploadId: string): Promise<void> {
	try {
		await env.BUCKET.resumeMultipartUpload(key, uploadId).abort();
	} catch {
		// Already completed or aborted.
	}
}
