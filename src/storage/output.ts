import { signerFor, workerSignerFor } from "./index";
import { bareEtag, completeParts, MAX_PART_BYTES, MAX_PARTS, MIN_PART_BYTES, partCount, partLength } from "./multipart";

/**
 * Where a GPU worker puts a job's video, per docs/gpu-job-protocol.md: `put`, one PUT of at most `max_size`
 * bytes, and, only when a video may be larger than that, `parts_url`: a Worker-signed POST that opens a multipart
 * upload and answers its part URLs once the worker knows the video's size. Nothing is opened in R2 beforehand, so
 * a typical job costs one R2 write (its PUT) and two signatures. Signed by the same signer as uploads: R2
 * presigned URLs with R2 S3 credentials, else Worker-signed URLs.
 */
export interface OutputTarget {
	put: { url: string; headers: Record<string, string>; max_size: number };
	parts_url?: { url: string; headers: Record<string, string> };
}

/** The part URLs `parts_url` answers: every part but the last exactly `part_size` bytes. */
export interface OutputParts {
	part_size: number;
	parts: { part_number: number; url: string; headers: Record<string, string> }[];
}

export interface SignOutputOptions {
	/** The largest video accepted (`MAX_VIDEO_BYTES`). R2 presigned PUTs cannot cap it: check `head` after. */
	maxSize: number;
	expiresInS: number;
	/** Default `video/mp4`. */
	contentType?: string;
}

/** The default part size of output videos when the worker names none. */
export const OUTPUT_PART_BYTES = 64 * 1024 * 1024;

/**
 * The largest single PUT per signer. R2 takes up to 4.995 GiB in one request
 * (https://developers.cloudflare.com/r2/platform/limits/); a Worker-signed PUT crosses the Worker, whose request
 * bodies are capped by the zone's plan at 100 MB on Free and Pro
 * (https://developers.cloudflare.com/workers/platform/limits/#request-limits), so it stays at one part's size.
 */
const SINGLE_PUT_BYTES = { r2: Math.floor(4.995 * 1024 ** 3), worker: OUTPUT_PART_BYTES } as const;

/**
 * Signs the `output` object of a job's GPU request: the create-only PUT, plus `parts_url` when `maxSize` exceeds
 * what one PUT may carry. No R2 call: the multipart upload is opened only if the worker asks for parts.
 */
export async function signOutputTarget(
	env: Env,
	origin: string,
	key: string,
	options: SignOutputOptions,
): Promise<OutputTarget> {
	const signer = signerFor(env, origin);
	const contentType = options.contentType ?? "video/mp4";
	const maxPut = Math.min(options.maxSize, SINGLE_PUT_BYTES[signer.kind]);
	// Create-only: once a video is stored (and verified when the job settles), no PUT may replace it, not even a
	// repeat of the same submission's URL within its lifetime.
	const put = await signer.signPut(key, {
		contentType,
		maxSize: maxPut,
		expiresInS: options.expiresInS,
		createOnly: true,
	});
	const output: OutputTarget = { put: { url: put.url, headers: put.headers, max_size: maxPut } };
	if (options.maxSize <= maxPut) return output;
	// Always the Worker's own route: opening a multipart upload needs the job's Durable Object, not just R2.
	const post = await workerSignerFor(env, origin).signPost(key, { expiresInS: options.expiresInS });
	output.parts_url = { url: post.url, headers: post.headers };
	return output;
}

/** Why a parts request is refused: the route answers each with a problem naming the field. */
export type PartsPlan = { ok: true; partSize: number; count: number } | { ok: false; field: string; message: string };

/** Checks a worker's `{ size, part_size? }` against R2's part rules and the video cap. */
export function planOutputParts(size: number, partSize: number | undefined, maxSize: number): PartsPlan {
	if (size > maxSize) return { ok: false, field: "size", message: `at most ${maxSize} bytes (MAX_VIDEO_BYTES)` };
	const chosen = partSize ?? OUTPUT_PART_BYTES;
	if (chosen < MIN_PART_BYTES || chosen > MAX_PART_BYTES) {
		return {
			ok: false,
			field: "part_size",
			message: `${MIN_PART_BYTES} to ${MAX_PART_BYTES} bytes (R2's part bounds)`,
		};
	}
	const count = partCount(size, chosen);
	if (count > MAX_PARTS) {
		return { ok: false, field: "part_size", message: `too small: ${count} parts, R2 takes at most ${MAX_PARTS}` };
	}
	return { ok: true, partSize: chosen, count };
}

/** Signs one URL per part of multipart upload `uploadId`, each for the exact byte count of its part. */
export async function signOutputParts(
	env: Env,
	origin: string,
	key: string,
	uploadId: string,
	size: number,
	partSize: number,
	expiresInS: number,
): Promise<OutputParts> {
	const signer = signerFor(env, origin);
	const parts = await Promise.all(
		Array.from({ length: partCount(size, partSize) }, async (_, i) => {
			const n = i + 1;
			const signed = await signer.signPart(key, uploadId, n, { size: partLength(size, partSize, n), expiresInS });
			return { part_number: n, url: signed.url, headers: signed.headers };
		}),
	);
	return { part_size: partSize, parts };
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
