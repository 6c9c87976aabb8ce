/**
 * Timing of the job loop: adaptive poll delays, jittered retry delays, the deadline.
 * Pure functions; `random` is injectable so tests are deterministic.
 */

export const POLL_MIN_MS = 1_000;
export const POLL_MAX_MS = 30_000;
export const RETRY_BASE_MS = 1_000;
export const RETRY_MAX_MS = 60_000;
/** How many times a job may be submitted (a lost job is resubmitted while under this). */
export const MAX_ATTEMPTS = 3;

/**
 * Delay before the next status poll, growing with the job's age: short jobs (previews) finish in seconds and
 * deserve quick polls; a long Wan render does not need one every second. A tenth of the age, clamped to 1–30 s.
 */
export function pollDelayMs(ageMs: number): number {
	return Math.min(POLL_MAX_MS, Math.max(POLL_MIN_MS, Math.round(Math.max(0, ageMs) / 10)));
}

/**
 * Delay before retrying after the `failures`-th consecutive transient error: "full jitter" (uniform in
 * [0, min(cap, base·2^n)]), so many jobs failing together do not retry in lockstep. A server's
 * `Retry-After` is a floor.
 */
export function retryDelayMs(failures: number, retryAfterMs?: number, random: () => number = Math.random): number {
	const exp = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.max(0, failures - 1));
	const jittered = Math.round(random() * exp);
	// Never zero: a retry in the same millisecond would hammer a struggling backend.
	const delay = Math.max(100, jittered);
	return retryAfterMs !== undefined && retryAfterMs > delay ? retryAfterMs : delay;
}

/** The instant a job created at `createdAtMs` times out. */
export function deadlineAt(createdAtMs: number, deadlineS: number): number {
	return createdAtMs + deadlineS * 1000;
}

/** The next alarm: `now + delay`, but never after the deadline, so a job fails on time. */
export function nextAlarmAt(nowMs: number, delayMs: number, deadlineMs: number): number {
	return Math.min(nowMs + delayMs, deadlineMs);
}
