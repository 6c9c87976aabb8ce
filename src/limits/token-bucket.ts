/**
 * Token-bucket arithmetic, pure and clock-free (the caller passes `nowMs`), so the rate limiter's Durable Object
 * stays a thin shell and the refill rules are unit-tested without waiting.
 *
 * A bucket holds at most `quota` tokens (the burst is the full quota) and refills continuously at
 * `quota / windowMs` tokens per millisecond. A request takes one token from every bucket it is charged to (or
 * `cost` tokens, when the gate lends some ahead: src/limits/lease.ts), or from none: a refusal by one bucket leaves
 * the others untouched.
 */

export interface BucketState {
	/** Tokens left (fractional while refilling). */
	tokens: number;
	/** When `tokens` was last brought up to date (epoch ms). */
	updatedMs: number;
}

export interface BucketPolicy {
	/** Tokens per window, and the burst. A positive integer. */
	quota: number;
	windowMs: number;
}

/** What a bucket looks like after a decision: the figures the `RateLimit` header reports. */
export interface BucketReport {
	quota: number;
	/** Whole tokens left. */
	remaining: number;
	/** Milliseconds until the next whole token when empty, else until the bucket is full again (0 when full). */
	resetMs: number;
}

export interface TakeResult<T> {
	allowed: boolean;
	/** Each bucket as given, with its new state (refilled; charged when allowed) and its report. */
	buckets: (T & { next: BucketState; report: BucketReport })[];
	/** When refused: milliseconds until every refusing bucket has a token again; 0 when allowed. */
	retryAfterMs: number;
	/** When refused: the buckets that had no token. */
	refused: T[];
}

/** Float slack, so 0.9999999999 tokens after an exact refill counts as one. */
const EPSILON = 1e-9;

const ratePerMs = (policy: BucketPolicy) => policy.quota / policy.windowMs;

/** A new bucket starts full. */
export function fullBucket(policy: BucketPolicy, nowMs: number): BucketState {
	return { tokens: policy.quota, updatedMs: nowMs };
}

/**
 * Brings a bucket up to `nowMs`. A lowered quota caps the tokens at once; a clock that steps back adds nothing
 * (and never takes tokens away).
 */
export function refill(state: BucketState, policy: BucketPolicy, nowMs: number): BucketState {
	const elapsed = Math.max(0, nowMs - state.updatedMs);
	const tokens = Math.min(policy.quota, state.tokens + elapsed * ratePerMs(policy));
	return { tokens, updatedMs: Math.max(nowMs, state.updatedMs) };
}

/** Milliseconds until `state` holds `target` tokens (0 when it already does). */
export function msUntil(state: BucketState, policy: BucketPolicy, target: number): number {
	const missing = Math.min(target, policy.quota) - state.tokens;
	return missing <= EPSILON ? 0 : missing / ratePerMs(policy);
}

export function report(state: BucketState, policy: BucketPolicy): BucketReport {
	const remaining = Math.floor(state.tokens + EPSILON);
	const resetMs = remaining === 0 ? msUntil(state, policy, 1) : msUntil(state, policy, policy.quota);
	return { quota: policy.quota, remaining, resetMs };
}

/**
 * Takes `cost` tokens (default 1) from each bucket if every one of them has that many; otherwise takes none and
 * says how long until they all do. A bucket never seen before (`state: null`) starts full.
 */
export function takeAll<T extends { state: BucketState | null; policy: BucketPolicy; cost?: number }>(
	buckets: T[],
	nowMs: number,
): TakeResult<T> {
	const refilled = buckets.map((b) => ({
		bucket: b,
		cost: b.cost ?? 1,
		state: refill(b.state ?? fullBucket(b.policy, nowMs), b.policy, nowMs),
	}));
	const empty = refilled.filter((r) => r.state.tokens + EPSILON < r.cost);
	const allowed = empty.length === 0;
	return {
		allowed,
		buckets: refilled.map(({ bucket, cost, state }) => {
			const next = allowed ? { tokens: Math.max(0, state.tokens - cost), updatedMs: state.updatedMs } : state;
			return { ...bucket, next, report: report(next, bucket.policy) };
		}),
		retryAfterMs: Math.max(0, ...empty.map((r) => msUntil(r.state, r.bucket.policy, r.cost))),
		refused: empty.map((r) => r.bucket),
	};
}
