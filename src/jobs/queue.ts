/**
 * A waiting job's place and reason (`queue` on the job JSON), as pure functions: the job's decisions
 * (durable-objects/job/decide.ts) set it from what admission and the backend just said.
 */
import type { QueueReason } from "../schemas/jobs";

export interface JobQueue {
	reason: QueueReason;
	/** 1-based place in the backend's fair admission queue; 0 when not in it. */
	position: number;
	/** Jobs holding the backend's slots plus those queued before this one; 0 when not in the queue. */
	ahead: number;
	/** When the job started waiting for `reason` (ISO 8601). */
	since: string;
	/** When the job is next tried, for reasons that wait for a moment. */
	retry_at?: string;
}

/** What a decision knows about why the job waits now. */
export interface QueueUpdate {
	reason: QueueReason;
	position?: number;
	ahead?: number;
	retryAtMs?: number;
}

/**
 * The job's queue state after `update` at `nowMs`: `since` is kept while the reason stays the same, so a client can
 * tell how long the job has waited for it.
 */
export function queueAfter(prev: JobQueue | null | undefined, update: QueueUpdate, nowMs: number): JobQueue {
	const since = prev && prev.reason === update.reason ? prev.since : new Date(nowMs).toISOString();
	const next: JobQueue = {
		reason: update.reason,
		position: update.position ?? 0,
		ahead: update.ahead ?? 0,
		since,
	};
	if (update.retryAtMs !== undefined) next.retry_at = new Date(update.retryAtMs).toISOString();
	return next;
}

/** Whether two queue states differ in anything a client sees (an unchanged one makes no event). */
export function queueChanged(a: JobQueue | null | undefined, b: JobQueue | null | undefined): boolean {
	return JSON.stringify(a ?? null) !== JSON.stringify(b ?? null);
}
