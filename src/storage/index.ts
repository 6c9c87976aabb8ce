import { configOf } from "../config";
import { R2PresignedUrlSigner } from "./r2-signer";
import type { UrlSigner } from "./signer";
import { WorkerUrlSigner } from "./worker-signer";

export type { SignedRequest, SignerKind, SignPartOptions, SignPutOptions, UrlSigner } from "./signer";

/**
 * The signer for this deployment: R2's S3-presigned flavour when the R2 S3 credentials are configured
 * (`R2_ACCOUNT_ID`, `R2_ACCESS_KEY_ID`, `R2_SECRET_ACCESS_KEY`, `R2_BUCKET`), so bytes go straight to R2;
 * otherwise the Worker-signed flavour, whose URLs land on this Worker's `/v1/storage/*` route. Clients use
 * both the same way; `complete` verifies size, type, sha256 and media bounds for both.
 *
 * `origin` is the request's own origin; `PUBLIC_URL` wins when set, so GPU backends get a reachable host.
 */
export function signerFor(env: Env, origin: string): UrlSigner {
	return r2SignerFor(env) ?? workerSignerFor(env, origin);
}

/** The R2 presigner when R2 S3 credentials are configured, else null. */
export function r2SignerFor(env: Env): R2PresignedUrlSigner | null {
	const { s3 } = configOf(env);
	return s3 ? new R2PresignedUrlSigner(s3) : null;
}

/** The Worker-signed signer (also the verifier the storage route needs). */
export function workerSignerFor(env: Env, origin: string): WorkerUrlSigner {
	return new WorkerUrlSigner(env.SIGNING_SECRET, configOf(env).publicUrl ?? origin);
}

/** Where each kind of object lives in the bucket: one place, so prefixes never drift. */
export const objectKeys = {
	/** The bytes of an upload. */
	uploadKey: (accountId: string, uploadId: string): string => `uploads/${accountId}/${uploadId}`,
	/**
	 * The verified copy of an upload (src/storage/pin.ts): no URL is ever signed for a PUT here, so once `complete`
	 * has checked these bytes nothing a client holds can change them. `nonce` tells concurrent attempts apart.
	 */
	verifiedKey: (accountId: string, uploadId: string, nonce: string): string =>
		`verified/${accountId}/${uploadId}/${nonce}`,
	/**
	 * A job's video. Each submission to a backend (numbered from 1) writes under its own `att_N` segment, so a run
	 * the job gave up on (lost, timed out, failed over) can never overwrite the video of the run that succeeded.
	 * Without a number: the single per-job key that jobs from before per-submission keys wrote.
	 */
	videoKey: (accountId: string, jobId: string, submission?: number): string =>
		submission
			? `outputs/${accountId}/${jobId}/att_${submission}/video.mp4`
			: `outputs/${accountId}/${jobId}/video.mp4`,
} as const;

/** The submission number in a video key (`att_N`); 0 for none or the per-job key of old jobs. */
export function submissionOf(videoKey: string | null | undefined): number {
	return Number(/\/att_(\d+)\/video\.mp4$/.exec(videoKey ?? "")?.[1] ?? 0);
}

/** The key of the video a job's current (or succeeding) submission writes. */
export function jobVideoKey(job: { spec: { id: string; account_id: string }; output_key?: string | null }): string {
	return job.output_key ?? objectKeys.videoKey(job.spec.account_id, job.spec.id);
}

/** The prefix of every upload's key; the storage route guards PUTs under it. */
export const UPLOADS_PREFIX = "uploads/";

/** The upload an `uploads/{account}/{upload}` key belongs to, or null for any other key. */
export function uploadOfKey(key: string): { accountId: string; uploadId: string } | null {
	const m = /^uploads\/([^/]+)\/([^/]+)$/.exec(key);
	return m?.[1] && m[2] ? { accountId: m[1], uploadId: m[2] } : null;
}
