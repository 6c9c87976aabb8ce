import type { UrlSigner } from "./signer";
import { WorkerUrlSigner } from "./worker-signer";

export type { SignedRequest, SignPutOptions, UrlSigner } from "./signer";

/**
 * The signer for this deployment. Today always the Worker-signed flavour, whose URLs land on this Worker's
 * `/v1/storage/*` route. The seam for R2's S3-presigned flavour: when R2 S3 credentials are configured,
 * return an `R2PresignedUrlSigner` here instead (then the route's upload guard and PUT checks must be
 * re-done at `complete`, which already verifies size, type and sha256).
 *
 * `origin` is the request's own origin; `PUBLIC_URL` wins when set, so GPU backends get a reachable host.
 */
export function signerFor(env: Env, origin: string): UrlSigner {
	return workerSignerFor(env, origin);
}

/** The Worker-signed signer (also the verifier the storage route needs). */
export function workerSignerFor(env: Env, origin: string): WorkerUrlSigner {
	return new WorkerUrlSigner(env.SIGNING_SECRET, env.PUBLIC_URL || origin);
}

/** Where each kind of object lives in the bucket: one place, so prefixes never drift. */
export const objectKeys = {
	/** The bytes of an upload. */
	uploadKey: (accountId: string, uploadId: string): string => `uploads/${accountId}/${uploadId}`,
	/** A job's finished video. */
	videoKey: (accountId: string, jobId: string): string => `outputs/${accountId}/${jobId}/video.mp4`,
} as const;

/** The prefix of every upload's key; the storage route guards PUTs under it. */
export const UPLOADS_PREFIX = "uploads/";
