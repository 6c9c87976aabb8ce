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

/** What the job loop knows when it plans its next status poll (all from the backend's own answers). */
export interface PollSignals {
	/** Since the job was submitted. */
	ageMs: number;
	/** How long the job has been running at the backend (its `executionTime`, else since first seen running); null while queued. */
	runningMs: number | null;
	/** The worker's progress percent (0–100), when it reports one. */
	percent?: number;
	/** The run time the model's throughput predicts for this job's frames (src/models), when known. */
	expectedRunMs?: number | null;
	/** Whether the backend calls back on completion (RunPod's webhook): polls are then only the fallback. */
	webhook: boolean;
}

/** Polls never wait longer than this while the job should still be running: a stalled estimate is re-read. */
const RUNNING_POLL_MAX_MS = { webhook: 120_000, polling: 60_000 } as const;

/**
 * Delay before the next status poll, aimed at the job's expected end instead of a fixed curve. The end comes from
 * what the backend said: the progress percent over the time running (a job 40 % done after 60 s has about 90 s
 * left), else the model's predicted run time; each poll refines it. The loop sleeps through most of the remaining
 * time (80 % of it, so an estimate that runs late is caught early), then polls about once a second around the
 * predicted end. Once past it, the delay grows with the overrun: quickly without a webhook (the poll is the only
 * way to learn of completion), more lazily with one (a lost webhook is the only case the poll serves). Without any
 * estimate (queued, or no progress and no throughput) it falls back to `pollDelayMs`'s curve, halved in rate
 * when a webhook will say when the job ends.
 */
export function nextPollDelayMs(s: PollSignals): number {
	const cap = s.webhook ? RUNNING_POLL_MAX_MS.webhook : RUNNING_POLL_MAX_MS.polling;
	const remaining = remainingMs(s);
	if (remaining === null) {
		const base = pollDelayMs(s.ageMs);
		return s.webhook ? Math.min(cap, Math.max(2 * POLL_MIN_MS, base * 2)) : base;
	}
	if (remaining > 2 * POLL_MIN_MS) return Math.min(cap, Math.max(POLL_MIN_MS, Math.round(remaining * 0.8)));
	const overrun = Math.max(0, -remaining);
	const grow = s.webhook ? overrun / 2 : overrun / 8;
	return Math.min(POLL_MAX_MS, Math.max(POLL_MIN_MS, Math.round(grow)));
}

/** The time left until the predicted end (negative once past it); null without a basis for a prediction. */
function remainingMs(s: PollSignals): number | null {
	if (s.runningMs === null) return null;
	const percent = s.percent ?? 0;
	// A percent this low says little about the rest (downloads and model loading come first).
	if (percent >= 2 && percent < 100) return (s.runningMs * (100 - percent)) / percent;
	if (s.expectedRunMs) return s.expectedRunMs - s.runningMs;
	return null;
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
