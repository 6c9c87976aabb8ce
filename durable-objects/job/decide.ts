/**
 * What a job does next, as pure functions of the job and what its backend just said: each returns a `Decision`
 * that the JobDO carries out (job-do.ts `#carryOut`). No I/O and no clock of their own, so every branch of the
 * job loop reads (and tests) like `transition()` in src/jobs/state.ts.
 */

import { type BackendFailure, type BackendResult, policyOf } from "../../src/backends/failure";
import { type Admission, mayFailover } from "../../src/backends/routing";
import type { PollStatus } from "../../src/backends/types";
import { MAX_ATTEMPTS, nextPollDelayMs, retryDelayMs } from "../../src/jobs/backoff";
import { type QueueUpdate, queueAfter } from "../../src/jobs/queue";
import {
	isTerminal,
	type JobCost,
	type JobError,
	type JobEvent,
	runStartedAt,
	type TransitionRefusal,
	transition,
	type VideoOutput,
} from "../../src/jobs/state";
import type { JobTimings } from "../../src/ops/metrics";
import type { StoredJob } from "./store";

/** Worker error codes of a run that failed moving its bytes, not computing them: worth a resubmission. */
const TRANSFER_FAILURES = ["input_download_failed", "output_upload_failed"];

export type Decision =
	/** Save the job, its next step due in `delayMs`; `event` goes to the history (`polled`: nowhere). */
	| { type: "schedule"; job: StoredJob; delayMs: number; event: string; detail?: string }
	/** Save the job, now terminal, and wind it up (outputs, index, metrics). */
	| { type: "finish"; job: StoredJob; event: "succeeded" | "failed"; detail?: string; timings?: JobTimings }
	/** The backend reports a finished video: check what was stored before deciding (`afterVerification`). */
	| { type: "verify"; job: StoredJob; status: PollStatus }
	/** Move the job to the next eligible backend; when there is none, do `otherwise`. */
	| { type: "failover"; job: StoredJob; reason: string; otherwise: Decision }
	/** Nothing to save (the state machine refused the change). */
	| { type: "none" };

/** The moment a decision is made, and the jitter source of its retry delays. */
export interface DecisionContext {
	now: number;
	random?: () => number;
	/** Whether the job's backend calls back on completion (RunPod's webhook): polls are then only the fallback. */
	webhook?: boolean;
}

/** The verdict on a stored video: its SHA-256, or why it was refused. */
export type Verdict = { ok: true; sha256: string } | { ok: false; message: string };

/** Applies an event through the pure state machine; the caller saves the result. */
export function applyEvent(
	job: StoredJob,
	event: JobEvent,
	now: number,
): { ok: true; job: StoredJob } | TransitionRefusal {
	const result = transition(job, event);
	if (!result.ok) return result;
	const next: StoredJob = { ...job, ...result.state, updated_at: new Date(now).toISOString() };
	if (isTerminal(next.status)) next.next_at = null;
	return { ok: true, job: next };
}

/** The GPU time of a run and what it cost at the job's backend price, with the backend's delay before it. */
export function costOf(
	job: StoredJob,
	executionMs: number | undefined,
	delayMs?: number,
	gpu?: string,
): JobCost | null {
	if (executionMs === undefined) return null;
	const gpu_seconds = Math.round(executionMs) / 1000;
	const usd = Math.round(gpu_seconds * job.spec.backend.price_per_second_usd * 1e6) / 1e6;
	const cost: JobCost = { gpu_seconds, usd };
	if (delayMs !== undefined) cost.backend_delay_s = Math.round(delayMs) / 1000;
	if (gpu !== undefined) cost.gpu_type = gpu;
	return cost;
}

/** The job with its queue state set from `update` (only a job still `queued` keeps one, see the store). */
export function waiting(job: StoredJob, update: QueueUpdate, now: number): StoredJob {
	return { ...job, queue: queueAfter(job.queue, update, now) };
}

/**
 * The next poll's delay from what the backend said (src/jobs/backoff.ts): while running, the time running (RunPod's
 * `executionTime`, else since first seen running) and the worker's percent, or the model's predicted run time.
 */
function pollDelay(job: StoredJob, ctx: DecisionContext, status?: PollStatus): number {
	const running = job.status === "running";
	const startedAt = job.started_at ? Date.parse(job.started_at) : null;
	const runningMs = !running ? null : (status?.executionMs ?? (startedAt === null ? 0 : ctx.now - startedAt));
	return nextPollDelayMs({
		ageMs: ctx.now - Date.parse(job.spec.created_at),
		runningMs,
		percent: running ? job.progress.percent : undefined,
		expectedRunMs: job.spec.expected_run_s ? job.spec.expected_run_s * 1000 : null,
		webhook: ctx.webhook ?? false,
	});
}
const at = (ctx: DecisionContext) => new Date(ctx.now).toISOString();

/** The job fails with `error` (and the cost its last run spent). */
export function failed(job: StoredJob, error: JobError, ctx: DecisionContext, cost?: JobCost | null): Decision {
	const applied = applyEvent(job, { type: "failed", at: at(ctx), error, cost }, ctx.now);
	if (!applied.ok) return { type: "none" };
	return { type: "finish", job: applied.job, event: "failed", detail: `${error.code}: ${error.message}` };
}

/** The deadline passed. */
export function timedOut(job: StoredJob, ctx: DecisionContext): Decision {
	return failed(job, { code: "timeout", message: `The job did not finish within ${job.spec.deadline_s} s.` }, ctx);
}

/** An input's stored bytes are not the ones verified at upload (src/storage/input-check.ts). */
export function inputChanged(job: StoredJob, message: string, ctx: DecisionContext): Decision {
	return failed(job, { code: "input_changed", message }, ctx);
}

/** The job's backend was deleted. */
export function backendGone(job: StoredJob, ctx: DecisionContext): Decision {
	const message = `The backend "${job.spec.backend.name}" no longer exists.`;
	return failed(job, { code: "backend_unavailable", message }, ctx);
}

/**
 * The backend gave no slot for now: ask again later, or, when its circuit is open, move a job that may leave it
 * to the next eligible backend first; when it refuses every job, meet that refusal now.
 */
export function notAdmitted(job: StoredJob, refusal: Exclude<Admission, { ok: true }>, ctx: DecisionContext): Decision {
	// The backend refuses every job (its key, its endpoint): this one fails or moves on now, as its own submission
	// would, instead of waiting for the breaker's probe to be refused again.
	if (refusal.reason === "circuit_open" && refusal.refusal) return afterFailure(job, refusal.refusal, ctx);
	const update: QueueUpdate =
		refusal.reason === "full"
			? { reason: "waiting_for_capacity", position: refusal.position, ahead: refusal.ahead }
			: { reason: "backend_unhealthy", retryAtMs: refusal.retryAtMs };
	const wait: Decision = {
		type: "schedule",
		job: waiting(job, update, ctx.now),
		delayMs: refusal.delayMs,
		event: "waiting",
		detail: refusal.detail,
	};
	if (refusal.reason !== "circuit_open" || job.spec.backend.pinned) return wait;
	return { type: "failover", job, reason: refusal.detail, otherwise: wait };
}

/**
 * A failed call to the backend. A job the backend refused before it ever ran may move to the next eligible
 * backend; otherwise transient failures are retried with jittered backoff (honouring Retry-After) and permanent
 * ones fail the job.
 */
export function afterFailure(job: StoredJob, failure: BackendFailure, ctx: DecisionContext): Decision {
	const here = retryOrFail(job, failure, ctx);
	if (!mayFailover(job.spec, job.remote_id, failure, job.transient_failures + 1)) return here;
	return { type: "failover", job, reason: failure.message, otherwise: here };
}

function retryOrFail(job: StoredJob, failure: BackendFailure, ctx: DecisionContext): Decision {
	if (failure.reason === "input_changed") return failed(job, { code: "input_changed", message: failure.message }, ctx);
	if (!policyOf(failure.reason).retry) {
		return failed(job, { code: failure.code ?? "backend_error", message: failure.message }, ctx);
	}
	const failures = job.transient_failures + 1;
	const delayMs = retryDelayMs(failures, failure.retryAfterMs, ctx.random);
	// A booting machine is a cold start; anything else is a retry after a transient failure.
	const reason = failure.reason === "booting" ? "cold_start" : "retrying";
	const retried: StoredJob = { ...job, transient_failures: failures };
	return {
		type: "schedule",
		job: job.status === "queued" ? waiting(retried, { reason, retryAtMs: ctx.now + delayMs }, ctx.now) : retried,
		delayMs,
		event: "retry",
		detail: failure.message,
	};
}

/** The answer to a submission: the job is now at the backend (polled from here on), or the call failed. */
export function afterSubmit(
	job: StoredJob,
	result: BackendResult<{ remoteId: string; pricePerSecondUsd?: number }>,
	ctx: DecisionContext,
): Decision {
	if (!result.ok) return afterFailure(job, result, ctx);
	const applied = applyEvent(job, { type: "submitted", remoteId: result.remoteId }, ctx.now);
	if (!applied.ok) return { type: "none" };
	const next: StoredJob = waiting({ ...applied.job, transient_failures: 0 }, { reason: "backend_queued" }, ctx.now);
	const price = result.pricePerSecondUsd;
	if (price !== undefined && price !== next.spec.backend.price_per_second_usd) {
		// The machine's own price (a rented vast.ai instance) is what this job's GPU time costs.
		next.spec = { ...next.spec, backend: { ...next.spec.backend, price_per_second_usd: price } };
	}
	return { type: "schedule", job: next, delayMs: pollDelay(next, ctx), event: "submitted" };
}

/** The answer to a status poll. */
export function afterPoll(job: StoredJob, result: BackendResult<PollStatus>, ctx: DecisionContext): Decision {
	if (!result.ok) return afterFailure(job, result, ctx);
	const live: StoredJob = { ...job, transient_failures: 0 };
	switch (result.state) {
		case "queued": {
			const queued = waiting(live, { reason: "backend_queued" }, ctx.now);
			return { type: "schedule", job: queued, delayMs: pollDelay(live, ctx, result), event: "polled" };
		}
		case "running": {
			const event: JobEvent = result.progress
				? { type: "progress", at: at(ctx), progress: result.progress }
				: { type: "started", at: at(ctx) };
			const applied = applyEvent(live, event, ctx.now);
			if (!applied.ok) return { type: "none" };
			// History records changes, not every identical poll.
			const changed =
				applied.job.status !== live.status || JSON.stringify(applied.job.progress) !== JSON.stringify(live.progress);
			const delayMs = pollDelay(applied.job, ctx, result);
			return { type: "schedule", job: applied.job, delayMs, event: changed ? event.type : "polled" };
		}
		case "completed":
			return { type: "verify", job: live, status: result };
		case "failed": {
			const error = result.error ?? { code: "inference_failed", message: "The GPU job failed." };
			const cost = costOf(live, result.executionMs, result.delayMs);
			if (TRANSFER_FAILURES.includes(error.code) && live.attempts < MAX_ATTEMPTS) {
				return retryTransfer(live, error, cost, ctx);
			}
			return failed(live, error, ctx, cost);
		}
		case "canceled":
			return failed(live, { code: "canceled_by_backend", message: "The backend canceled the job." }, ctx);
		case "lost":
			return lost(live, ctx, result.error?.message);
	}
}

/**
 * The backend forgot the job (404, or the machine it ran on died): resubmit while under the attempt limit, else
 * fail. `why`, when the backend said, goes to the job's history.
 */
function lost(job: StoredJob, ctx: DecisionContext, why?: string): Decision {
	if (job.attempts >= MAX_ATTEMPTS) {
		return failed(job, { code: "lost", message: `The backend lost the job ${job.attempts} times; giving up.` }, ctx);
	}
	const applied = applyEvent(job, { type: "lost" }, ctx.now);
	if (!applied.ok) return { type: "none" };
	return {
		type: "schedule",
		job: waiting(applied.job, { reason: "submitting" }, ctx.now),
		delayMs: 0,
		event: "lost",
		...(why ? { detail: why } : {}),
	};
}

/**
 * The worker ran but could not move the bytes (its signed GETs or PUT failed: the Worker's storage routes were
 * down, restarting, or the URLs expired). Nothing is wrong with the job itself: it is submitted again, with fresh
 * URLs, after a backoff. The run happened and was billed: its GPU time stays on the job.
 */
function retryTransfer(job: StoredJob, error: JobError, cost: JobCost | null, ctx: DecisionContext): Decision {
	const applied = applyEvent(job, { type: "lost", cost }, ctx.now);
	if (!applied.ok) return { type: "none" };
	const delayMs = retryDelayMs(job.attempts, undefined, ctx.random);
	return {
		type: "schedule",
		job: waiting(applied.job, { reason: "retrying", retryAtMs: ctx.now + delayMs }, ctx.now),
		delayMs,
		event: "transfer_failed",
		detail: `${error.code}: ${error.message}`,
	};
}

/** The stored video checked: the job succeeds with it, or fails with why it was refused. */
export function afterVerification(
	job: StoredJob,
	status: PollStatus,
	verdict: Verdict,
	ctx: DecisionContext,
): Decision {
	const cost = costOf(job, status.executionMs, status.delayMs, status.gpu);
	if (!verdict.ok) return failed(job, { code: "output_verification_failed", message: verdict.message }, ctx, cost);
	const { parts: _parts, ...reported } = status.output ?? ({} as VideoOutput);
	const output = { video: { ...reported, content_type: "video/mp4", sha256: verdict.sha256 } };
	const done = at(ctx);
	// A job that finished between two polls was never seen running: it started when the backend says its run did.
	const startedAt = runStartedAt(done, status.executionMs, job.spec.created_at);
	const applied = applyEvent(job, { type: "succeeded", at: done, output, cost, startedAt }, ctx.now);
	if (!applied.ok) return { type: "none" };
	const timings = { delayMs: status.delayMs, executionMs: status.executionMs };
	return { type: "finish", job: applied.job, event: "succeeded", timings };
}
