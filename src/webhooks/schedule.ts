/**
 * When a failed webhook delivery is tried again. In the spirit of the Standard Webhooks example schedule
 * (immediately, then seconds, minutes, hours), shortened to about nine hours in all: a job's receiver that is down
 * longer than that has lost interest in a render, and the job stays readable through the API.
 */

/** Caps of the waits after the 1st, 2nd, … failed attempt; after the last one the delivery is given up. */
export const RETRY_SCHEDULE_MS = [5_000, 30_000, 120_000, 600_000, 1_800_000, 7_200_000, 21_600_000] as const;
/** First attempt plus one per schedule step. */
export const MAX_DELIVERY_ATTEMPTS = RETRY_SCHEDULE_MS.length + 1;
/** A wait is never shorter than this, even when the jitter draws near zero, so a sick receiver gets a breather. */
export const MIN_RETRY_MS = 1_000;
/** A receiver's Retry-After is honoured up to this (a bogus "retry in a year" must not park the delivery). */
export const MAX_RETRY_AFTER_MS = 21_600_000;

/**
 * The wait after the `attempts`-th failed attempt, or null when the delivery should be given up. Exponential
 * caps with full jitter (uniform in [0, cap]), so the many deliveries a receiver outage leaves behind do not all
 * come back in lockstep; a `Retry-After` (429, 503) is a floor.
 */
export function retryDelayMs(
	attempts: number,
	retryAfterMs?: number,
	random: () => number = Math.random,
): number | null {
	if (attempts >= MAX_DELIVERY_ATTEMPTS) return null;
	const cap = RETRY_SCHEDULE_MS[Math.min(Math.max(0, attempts - 1), RETRY_SCHEDULE_MS.length - 1)] ?? MIN_RETRY_MS;
	const jittered = Math.max(MIN_RETRY_MS, Math.round(random() * cap));
	if (retryAfterMs === undefined) return jittered;
	return Math.max(jittered, Math.min(retryAfterMs, MAX_RETRY_AFTER_MS));
}
