/**
 * The job state machine as pure functions. Statuses: queued → running → succeeded | failed | canceled; terminal
 * statuses never change. `transition` returns the next state or a tagged refusal; the JobDO persists the result.
 */

import type { JobStatus } from "../schemas/jobs";

export const TERMINAL_STATUSES: readonly JobStatus[] = ["succeeded", "failed", "canceled"];

export function isTerminal(status: JobStatus): boolean {
	return TERMINAL_STATUSES.includes(status);
}

export interface JobError {
	code: string;
	message: string;
}

export interface JobProgress {
	percent: number;
	stage?: string;
	message?: string;
}

export interface VideoOutput {
	content_type: string;
	size: number;
	sha256?: string;
	duration_s?: number;
	width?: number;
	height?: number;
	fps?: number;
	/** In a worker's report only (never stored on the job): the parts it wrote through the multipart URLs. */
	parts?: { part_number: number; etag: string }[];
}

export interface JobCost {
	gpu_seconds: number;
	usd: number;
	/**
	 * How long the backend held its runs before they started, as it reports it (RunPod's `delayTime`: its queue and
	 * any worker's cold start), summed; absent when no run reported it.
	 */
	backend_delay_s?: number;
	/** The GPU of the last run that named it. */
	gpu_type?: string;
}

/** The part of a job the state machine owns. */
export interface JobState {
	status: JobStatus;
	/** Submissions to a backend so far (a lost job's resubmission counts). */
	attempts: number;
	/** The backend's id for the current submission; null before submit and after a loss. */
	remote_id: string | null;
	started_at: string | null;
	completed_at: string | null;
	progress: JobProgress;
	error: JobError | null;
	output: { video: VideoOutput } | null;
	/** GPU time spent so far, over every submission: abandoned runs count too, the backend billed them. */
	cost: JobCost | null;
}

export type JobEvent =
	| { type: "submitted"; remoteId: string }
	| { type: "started"; at: string }
	| { type: "progress"; at: string; progress: JobProgress }
	/** The submission is abandoned (lost, or its transfers failed); `cost` is what its run had already spent. */
	| { type: "lost"; cost?: JobCost | null }
	/** `startedAt`: when the backend's run began, from the execution time it reported (see runStartedAt). */
	| { type: "succeeded"; at: string; output: { video: VideoOutput }; cost: JobCost | null; startedAt?: string }
	| { type: "failed"; at: string; error: JobError; cost?: JobCost | null }
	| { type: "canceled"; at: string };

export type TransitionRefusal =
	| { ok: false; reason: "terminal"; status: JobStatus }
	| { ok: false; reason: "not_submitted"; status: JobStatus };

export type TransitionResult = { ok: true; state: JobState } | TransitionRefusal;

export function initialState(): JobState {
	return {
		status: "queued",
		attempts: 0,
		remote_id: null,
		started_at: null,
		completed_at: null,
		progress: { percent: 0 },
		error: null,
		output: null,
		cost: null,
	};
}

/** The sum of two spends; null only when neither is known. Rounded like each part (ms, micro-dollars). */
export function addCost(a: JobCost | null, b: JobCost | null): JobCost | null {
	if (!a || !b) return a ?? b;
	const sum: JobCost = {
		gpu_seconds: Math.round((a.gpu_seconds + b.gpu_seconds) * 1000) / 1000,
		usd: Math.round((a.usd + b.usd) * 1e6) / 1e6,
	};
	if (a.backend_delay_s !== undefined || b.backend_delay_s !== undefined) {
		sum.backend_delay_s = Math.round(((a.backend_delay_s ?? 0) + (b.backend_delay_s ?? 0)) * 1000) / 1000;
	}
	const gpu = b.gpu_type ?? a.gpu_type;
	if (gpu !== undefined) sum.gpu_type = gpu;
	return sum;
}

function clampPercent(p: number): number {
	return Number.isFinite(p) ? Math.min(100, Math.max(0, Math.round(p))) : 0;
}

/**
 * When a run began that the backend reports took `executionMs` and that was seen finished at `at`: a job that
 * finishes between two polls was never seen running, and without this would start when it ended. Never before the
 * job was created; undefined when the backend reports no execution time.
 */
export function runStartedAt(at: string, executionMs: number | undefined, createdAt: string): string | undefined {
	if (executionMs === undefined || !(executionMs > 0)) return undefined;
	return new Date(Math.max(Date.parse(createdAt), Date.parse(at) - executionMs)).toISOString();
}

/** Applies `event` to `state`. Pure: the same inputs always give the same output. */
export function transition(state: JobState, event: JobEvent): TransitionResult {
	if (isTerminal(state.status)) return { ok: false, reason: "terminal", status: state.status };
	switch (event.type) {
		case "submitted":
			return { ok: true, state: { ...state, remote_id: event.remoteId, attempts: state.attempts + 1 } };
		case "started":
			if (!state.remote_id) return { ok: false, reason: "not_submitted", status: state.status };
			return {
				ok: true,
				state: { ...state, status: "running", started_at: state.started_at ?? event.at },
			};
		case "progress": {
			if (!state.remote_id) return { ok: false, reason: "not_submitted", status: state.status };
			// Progress never goes backwards within a run; a resubmission (`lost`) resets it to 0 first, so a new run
			// starts over. A backend that reports a lower percent (a new stage counting from 0) keeps the higher one.
			const percent = Math.max(clampPercent(event.progress.percent), state.progress.percent);
			return {
				ok: true,
				state: {
					...state,
					status: "running",
					started_at: state.started_at ?? event.at,
					progress: { ...event.progress, percent },
				},
			};
		}
		case "lost":
			// The backend forgot the job: it goes back to the queue for a resubmission (counted on submit).
			return {
				ok: true,
				state: {
					...state,
					status: "queued",
					remote_id: null,
					progress: { percent: 0 },
					cost: addCost(state.cost, event.cost ?? null),
				},
			};
		case "succeeded":
			return {
				ok: true,
				state: {
					...state,
					status: "succeeded",
					started_at: state.started_at ?? event.startedAt ?? event.at,
					completed_at: event.at,
					progress: { percent: 100, stage: "done" },
					output: event.output,
					cost: addCost(state.cost, event.cost),
					error: null,
				},
			};
		case "failed":
			return {
				ok: true,
				state: {
					...state,
					status: "failed",
					completed_at: event.at,
					error: event.error,
					cost: addCost(state.cost, event.cost ?? null),
				},
			};
		case "canceled":
			return { ok: true, state: { ...state, status: "canceled", completed_at: event.at } };
	}
}
