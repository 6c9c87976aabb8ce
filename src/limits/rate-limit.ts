/** The rate limiter's contract: what the Worker asks the per-key Durable Object, and what it answers. */

/** `requests`: every authenticated call. `jobs`: job creations, charged in addition to `requests`. */
export type BucketName = "requests" | "jobs";

/** Every bucket refills its quota over one minute. */
export const WINDOW_S = 60;

/** One bucket to charge, with its current quota (passed on every call, so a changed limit applies at once). */
export interface BucketCharge {
	name: BucketName;
	quota: number;
}

export interface BucketStatus {
	name: BucketName;
	quota: number;
	remaining: number;
	/** Whole seconds until the next token when empty, else until the bucket is full again. */
	reset_s: number;
}

export interface RateLimitDecision {
	allowed: boolean;
	buckets: BucketStatus[];
	/** When refused: whole seconds (at least 1) until a retry can pass; 0 when allowed. */
	retry_after_s: number;
	/** When refused: the buckets that were empty. */
	limited_by: BucketName[];
}
