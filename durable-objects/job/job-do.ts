import { DurableObject } from "cloudflare:workers";
import { jobContext, loadBackend } from "../../src/backends/registry";
import { admitJob, failoverTarget, movedSpec, recordRun, releaseSlot, reportOutcome } from "../../src/backends/routing";
import type { GpuBackend } from "../../src/backends/types";
import type { BackendRow } from "../../src/db/backends";
import { upsertJobIndex } from "../../src/db/jobs";
import { deadlineAt, nextAlarmAt } from "../../src/jobs/backoff";
import { etaOf, initialEstimate } from "../../src/jobs/eta";
import { type JobLogEntry, mergeLog, serviceEntry } from "../../src/jobs/logs";
import { queueAfter } from "../../src/jobs/queue";
import { type JobRecord, type JobSnapshot, type JobSpec, snapshotOf } from "../../src/jobs/record";
import { limitReached, wakeLimit } from "../../src/jobs/run-limits";
import { initialState, isTerminal, type TransitionRefusal, type VideoOutput } from "../../src/jobs/state";
import { createLogger, type Logger } from "../../src/lib/logger";
import { recordJobMetrics } from "../../src/ops/metrics";
import { changedInput } from "../../src/storage/input-check";
import {
	afterPoll,
	afterSubmit,
	afterVerification,
	applyEvent,
	backendGone,
	type Decision,
	type DecisionContext,
	failed,
	inputChanged,
	notAdmitted,
	timedOut,
	waiting,
} from "./decide";
import { WorkerLogs } from "./logs";
import { JobNotifier } from "./notifier";
import { JobOutput } from "./output";
import { openJobSql } from "./schema";
import { JobStore, type StoredJob } from "./store";

/** The platform's alarm retry count from which the DO re-arms by itself instead of throwing again. */
const LAST_PLATFORM_RETRY = 5;
const FALLBACK_RETRY_MS = 60_000;
/** How soon an index write that failed during a call (not a step) is tried again. */
const INDEX_RETRY_MS = 1000;

/** At most this many of the job's steps are in its log (the newest). */
const MAX_LOG_STEPS = 500;

/** The key of the JobDO's inspection method (see `[INSPECT]`). */
export const INSPECT = Symbol("JobDO.inspect");

export type CancelResult = { ok: true; job: JobRecord } | { ok: false; reason: "not_found" } | TransitionRefusal;

const iso = (ms: number) => new Date(ms).toISOString();
const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * One job: its record (schema.ts, store.ts), its state machine and its alarm loop. The alarm does what is due
 * (webhook deliveries, then the job's step: submit, poll, retry, time out); the step carries out a `Decision`
 * (decide.ts) made from what the backend said, saves, and mirrors the change to the D1 index. Every entry point
 * ends in `#arm()`, the one place that sets or clears the alarm, from what the storage says is due next.
 * Unexpected errors are left to throw so the platform retries the alarm.
 */
export class JobDO extends DurableObject<Env> {
	readonly #store: JobStore;
	/** Events (SSE) and webhooks of the job's changes; the store calls it at each save. */
	readonly #notifier: JobNotifier;
	readonly #output: JobOutput;
	readonly #workerLogs: WorkerLogs;
	#log: Logger;
	/** Alarm steps run one at a time: a manual run (tests) and a timer-fired one must not interleave. */
	#chain: Promise<void> = Promise.resolve();

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		const sql = openJobSql(ctx.storage.sql);
		this.#notifier = new JobNotifier(sql);
		this.#store = new JobStore(sql, this.#notifier);
		this.#log = createLogger({ component: "job_do" });
		this.#output = new JobOutput(env, this.#store, () => this.#log);
		this.#workerLogs = new WorkerLogs(sql);
	}

	/**
	 * The job's log: its steps (the history) and the GPU worker's lines about it, oldest first, cleaned of URLs'
	 * query strings and secrets (src/jobs/logs.ts). Null when this object holds no job.
	 */
	async logs(): Promise<JobLogEntry[] | null> {
		if (!this.#store.load()) return null;
		// The newest steps only: a job that retried for hours has a long history, and the log is read whole.
		const steps = this.#store.history().slice(-MAX_LOG_STEPS);
		return mergeLog(steps.map(serviceEntry), this.#workerLogs.list());
	}

	/** Creates the job, due to be submitted at once. Creating an existing job returns it unchanged. */
	async create(spec: JobSpec): Promise<JobRecord> {
		const existing = this.#store.load();
		if (existing) return existing;
		const now = Date.now();
		const job: StoredJob = {
			...initialState(),
			spec,
			updated_at: iso(now),
			next_at: now,
			transient_failures: 0,
			deadline_at: deadlineAt(Date.parse(spec.created_at), spec.deadline_s),
			index_synced: false,
			queue: queueAfter(null, { reason: "submitting" }, Date.parse(spec.created_at)),
			estimate: spec.work ? initialEstimate(spec.work) : null,
		};
		// A client reading the job at once already learns when it should finish; its first step refines it.
		if (job.estimate) job.eta = etaOf(job, job.estimate, now);
		await this.#arming(async () => this.#store.insert(job));
		// The job is accepted once stored and armed; if D1 hiccups here, the first alarm step indexes it.
		try {
			await this.#syncIndex(job);
		} catch (err) {
			this.#log.error("index_sync_failed", { error: message(err) });
		}
		return job;
	}

	/**
	 * The job, or null when this object holds none. Re-arms a lost alarm, so a live job always moves on; an alarm
	 * that is set was set by `#arm` after the last change, so a read (the hot path of a polling client) leaves it.
	 */
	async get(): Promise<JobRecord | null> {
		const job = this.#store.load();
		if (job && !isTerminal(job.status) && (await this.ctx.storage.getAlarm()) === null) await this.#arm();
		return job;
	}

	/**
	 * What the status read shows (`snapshotOf`), or null: `get` without the spec's inputs, parameters and routing,
	 * which the read never shows, so the answer a polling client waits for is less than half the bytes to copy.
	 */
	async snapshot(): Promise<JobSnapshot | null> {
		const job = await this.get();
		return job ? snapshotOf(job) : null;
	}

	/**
	 * The multipart upload the current submission's worker writes `key` through (opened on its first request),
	 * or null when `key` may no longer be written: see JobOutput.openParts.
	 */
	async openOutputParts(key: string): Promise<string | null> {
		return this.#output.openParts(key);
	}

	/**
	 * The job's event stream (SSE bytes, see events.ts): the current state, or with `lastEventId` the stored
	 * events after it, then live `status` and `progress` events until a terminal status. Null when the job does
	 * not exist, or when a resume of a finished job has nothing left to send.
	 */
	async events(lastEventId: number | null): Promise<ReadableStream<Uint8Array> | null> {
		const job = this.#store.load();
		if (!job) return null;
		return this.#notifier.subscribe(job, lastEventId);
	}

	/**
	 * What tests and debugging may read of the object's memory, reached from inside its isolate
	 * (`runInDurableObject`): a symbol names it, and RPC calls only methods named by strings.
	 */
	[INSPECT](): { listeners: number } {
		return { listeners: this.#notifier.listeners() };
	}

	/**
	 * Runs the next step now instead of when due: a backend says the job changed (a RunPod webhook), or its
	 * BackendDO granted it a slot. Only a hint: the step confirms with the backend (`/status`, admission), so a
	 * repeated call costs one step at most.
	 */
	async poke(): Promise<boolean> {
		return this.#arming(async () => {
			const job = this.#store.load();
			if (!job || isTerminal(job.status)) return false;
			// "polled" keeps the history free of pokes.
			await this.#schedule(job, 0, "polled");
			return true;
		});
	}

	/**
	 * Cancels a job that is not terminal (and, best effort, its remote run). A terminal job is refused
	 * (`reason: "terminal"`), which the API answers with 409.
	 */
	async cancel(): Promise<CancelResult> {
		const canceled = await this.#arming(() => this.#cancel());
		if (!canceled.ok) return canceled;
		recordJobMetrics(this.env, snapshotOf(canceled.job));
		await this.#output.abortUpload();
		if (canceled.job.remote_id) await this.#cancelRemote(canceled.job.remote_id);
		await releaseSlot(this.env, canceled.job.spec.backend.name, canceled.job.spec.id);
		return canceled;
	}

	/** Runs one step of the job loop; see the class comment. */
	override async alarm(info?: AlarmInvocationInfo): Promise<void> {
		const step = this.#chain.then(() => this.#arming(() => this.#tick()));
		// The chain continues after a failed step; the failure itself still reaches the platform (retry).
		this.#chain = step.catch(() => undefined);
		try {
			await step;
		} catch (err) {
			// The platform retries a throwing alarm a few times (6), then drops it. Before that happens, keep the job
			// alive ourselves, so it still reaches a terminal state (at the latest, its deadline).
			if ((info?.retryCount ?? 0) < LAST_PLATFORM_RETRY) throw err;
			this.#log.error("alarm_failed", { error: message(err) });
			this.#store.postpone(Date.now() + FALLBACK_RETRY_MS, Date.now());
			await this.#arm();
		}
	}

	/**
	 * The one place that sets or clears the alarm: at the earliest moment the storage says something is due (the
	 * job's next step, a webhook attempt, a deferred index write), or none.
	 */
	async #arm(): Promise<void> {
		const due = this.#store.nextWakeAt();
		const current = await this.ctx.storage.getAlarm();
		if (due === null) {
			if (current !== null) await this.ctx.storage.deleteAlarm();
			return;
		}
		// What is already due fires now. An alarm at or before now may be the one firing, which the platform forgets
		// once its handler returns, so it is set again rather than trusted.
		const now = Date.now();
		if (due <= now) await this.ctx.storage.setAlarm(now);
		else if (current !== due) await this.ctx.storage.setAlarm(due);
	}

	/** Runs `work`, then `#arm()`, whether `work` succeeded or threw. */
	async #arming<T>(work: () => Promise<T>): Promise<T> {
		try {
			return await work();
		} finally {
			await this.#arm();
		}
	}

	/**
	 * One alarm: due webhook deliveries go out first, then the job's step. An alarm that fired only for deliveries
	 * (the job's own step is not due yet) skips the step, so a webhook retry never makes the job poll its backend
	 * early.
	 */
	async #tick(): Promise<void> {
		const before = this.#store.load();
		const deliveriesWereDue = before ? await this.#notifier.sendDue(this.env, before, this.#log) : false;
		// Read again: the sends took time, and a cancel or a poke may have landed meanwhile.
		const job = this.#store.load();
		const stepDue =
			!job || isTerminal(job.status) || job.next_at === null || job.next_at <= Date.now() || !job.index_synced;
		if (stepDue || !deliveriesWereDue) await this.#step();
	}

	async #step(): Promise<void> {
		const job = this.#store.load();
		if (!job) return;
		this.#log = createLogger({ component: "job_do", job_id: job.spec.id });
		if (!job.index_synced) await this.#syncIndex(job);
		if (isTerminal(job.status)) return;
		if (Date.now() >= job.deadline_at) {
			await this.#carryOut(timedOut(job, this.#context()));
			if (job.remote_id) await this.#cancelRemote(job.remote_id);
			return;
		}
		const limit = limitReached(job, Date.now());
		if (limit) {
			// The job's own limit: it ends (its slot or queue place going to the next job) and its run is canceled.
			if (!(await this.#carryOut(failed(job, limit, this.#context())))) return;
			if (job.remote_id) await this.#cancelRemote(job.remote_id);
			return;
		}
		const loaded = await loadBackend(this.env, job.spec.backend.name);
		if (!loaded) {
			await this.#carryOut(backendGone(job, this.#context()));
			return;
		}
		if (job.remote_id) await this.#poll(job, loaded.backend, job.remote_id);
		else await this.#submit(job, loaded.backend, loaded.row);
	}

	async #submit(job: StoredJob, backend: GpuBackend, row: BackendRow): Promise<void> {
		// Each submission hands out fresh reads of the inputs: they must still be the verified bytes.
		const changed = await changedInput(this.env.BUCKET, job.spec.inputs);
		if (changed) {
			await this.#carryOut(inputChanged(job, changed, this.#context()));
			return;
		}
		// Admission (src/backends/routing.ts): a slot on the backend, unless its circuit is open.
		const admission = await admitJob(this.env, job.spec, row);
		// The backend's latest word on how long the job should take and wait, kept for its ETA until the next check.
		if (admission.estimate) job = { ...job, estimate: admission.estimate };
		if (!admission.ok) {
			await this.#carryOut(notAdmitted(job, admission, this.#context()));
			return;
		}
		const { input, videoKey } = await this.#output.nextSubmission(job);
		const result = await backend.forJob(jobContext({ ...job, output_key: videoKey })).submit(input);
		await reportOutcome(this.env, row.name, result);
		if (await this.#carryOut(afterSubmit(job, result, this.#context(backend)))) return;
		// The job ended while the request was out (a cancel): what the submission started goes too.
		await this.#output.abortUpload();
		if (result.ok) await this.#cancelRemote(result.remoteId);
	}

	async #poll(job: StoredJob, backend: GpuBackend, remoteId: string): Promise<void> {
		const result = await backend.forJob(jobContext(job)).poll(remoteId);
		if (result.ok && result.logs) {
			this.#notifier.logged(job, this.#workerLogs.append(result.logs), iso(Date.now()));
		}
		await this.#carryOut(afterPoll(job, result, this.#context(backend)));
	}

	/**
	 * Carries out a decision; true when it was saved. False when the job ended meanwhile (the store refuses to
	 * overwrite a terminal job) or there was nothing to save.
	 */
	async #carryOut(decision: Decision): Promise<boolean> {
		switch (decision.type) {
			case "none":
				return false;
			case "schedule":
				if (decision.event === "retry") {
					this.#log.warn("backend_transient_failure", {
						message: decision.detail,
						failures: decision.job.transient_failures,
					});
				}
				return this.#schedule(decision.job, decision.delayMs, decision.event, decision.detail);
			case "finish":
				return this.#finish(decision);
			case "verify": {
				const { job, status } = decision;
				const verdict = await this.#output.verify(job, status.output ?? ({} as VideoOutput));
				return this.#carryOut(afterVerification(job, status, verdict, this.#context()));
			}
			case "failover": {
				const target = await failoverTarget(this.env, decision.job.spec);
				return target ? this.#moveTo(decision.job, target, decision.reason) : this.#carryOut(decision.otherwise);
			}
		}
	}

	/** Saves the job with its next step due in `delayMs` (capped at the deadline), then mirrors the index. */
	async #schedule(job: StoredJob, delayMs: number, event: string, detail?: string): Promise<boolean> {
		const now = Date.now();
		const next: StoredJob = {
			...job,
			next_at: nextAlarmAt(now, delayMs, wakeLimit(job, job.deadline_at)),
			updated_at: iso(now),
			eta: job.estimate ? etaOf(job, job.estimate, now) : null,
		};
		if (!this.#store.save(next, event, detail)) return false;
		await this.#syncIndex(next);
		return true;
	}

	/** Routes a job that has not run to another backend: new spec, submitted at once, its slot given back. */
	async #moveTo(job: StoredJob, target: BackendRow, reason: string): Promise<boolean> {
		const from = job.spec.backend.name;
		const moved: StoredJob = waiting(
			{ ...job, spec: movedSpec(job.spec, target), transient_failures: 0 },
			{ reason: "submitting" },
			Date.now(),
		);
		this.#log.warn("job_failover", { from, to: target.name, reason });
		if (!(await this.#schedule(moved, 0, "failover", `${from} → ${target.name}: ${reason}`))) return false;
		await releaseSlot(this.env, from, job.spec.id);
		return true;
	}

	/** Saves a terminal job, winds up its outputs and mirrors the index (a D1 failure throws: the alarm retries). */
	async #finish({ job, event, detail, timings = {} }: Extract<Decision, { type: "finish" }>): Promise<boolean> {
		if (!this.#store.save(job, event, detail)) return false;
		if (job.status === "succeeded" && job.spec.work && timings.executionMs !== undefined) {
			await recordRun(this.env, job.spec.backend.name, {
				model: job.spec.model,
				units: job.spec.work.units,
				exec_ms: timings.executionMs,
				delay_ms: timings.delayMs ?? null,
			});
		}
		// Before the index sync (which may throw and leave a terminal job the alarm no longer steps). A lost release
		// is recovered by the backend's own check of its holders.
		await releaseSlot(this.env, job.spec.backend.name, job.spec.id);
		await this.#output.abortUpload();
		await this.#output.sweep(job);
		await this.#syncIndex(job);
		this.#log.info("job_finished", { status: job.status, error_code: job.error?.code, attempts: job.attempts });
		recordJobMetrics(this.env, snapshotOf(job), { ...timings, outputBytes: job.output?.video.size });
		return true;
	}

	/** Saves the cancel; an index write that fails is deferred, not thrown (the caller is a client's request). */
	async #cancel(): Promise<CancelResult> {
		const job = this.#store.load();
		if (!job) return { ok: false, reason: "not_found" };
		const now = Date.now();
		const applied = applyEvent(job, { type: "canceled", at: iso(now) }, now);
		if (!applied.ok) return applied;
		this.#store.save(applied.job, "canceled");
		try {
			await this.#syncIndex(applied.job);
		} catch (err) {
			this.#log.error("index_sync_failed", { error: message(err) });
			this.#store.deferIndexSync(Date.now() + INDEX_RETRY_MS);
		}
		return { ok: true, job: applied.job };
	}

	#context(backend?: GpuBackend): DecisionContext {
		return { now: Date.now(), webhook: backend?.webhooks ?? false };
	}

	async #syncIndex(job: StoredJob): Promise<void> {
		await upsertJobIndex(this.env.DB, snapshotOf(job));
		this.#store.markIndexSynced(job.updated_at);
	}

	/** Best effort: the job is already decided here; a remote run left behind only costs GPU time. */
	async #cancelRemote(remoteId: string): Promise<void> {
		const job = this.#store.load();
		if (!job) return;
		try {
			const loaded = await loadBackend(this.env, job.spec.backend.name);
			if (!loaded) return;
			const result = await loaded.backend.forJob(jobContext(job)).cancel(remoteId);
			if (!result.ok) this.#log.warn("remote_cancel_failed", { message: result.message });
		} catch (err) {
			this.#log.warn("remote_cancel_failed", { error: message(err) });
		}
	}
}
