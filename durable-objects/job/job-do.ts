import { DurableObject } from "cloudflare:workers";
import { jobContext, loadBackend } from "../../src/backends/registry";
import {
	admitJob,
	failoverTarget,
	mayFailover,
	movedSpec,
	releaseSlot,
	reportOutcome,
} from "../../src/backends/routing";
import type { BackendFailure, GpuBackend, PollStatus } from "../../src/backends/types";
import type { BackendRow } from "../../src/db/backends";
import { upsertJobIndex } from "../../src/db/jobs";
import { deadlineAt, MAX_ATTEMPTS, nextAlarmAt, pollDelayMs, retryDelayMs } from "../../src/jobs/backoff";
import { buildJobInput } from "../../src/jobs/input";
import { type JobRecord, type JobSpec, snapshotOf } from "../../src/jobs/record";
import {
	initialState,
	isTerminal,
	type JobCost,
	type JobError,
	type JobEvent,
	type TransitionRefusal,
	transition,
	type VideoOutput,
} from "../../src/jobs/state";
import { verifyVideo } from "../../src/jobs/verify";
import { createLogger, type Logger } from "../../src/lib/logger";
import { type JobTimings, recordJobMetrics } from "../../src/ops/metrics";
import { jobVideoKey, objectKeys, submissionOf } from "../../src/storage";
import { abortOutputMultipart, completeOutputMultipart } from "../../src/storage/output";
import { JobNotifier } from "./notifier";
import { openJobSql } from "./schema";
import { JobStore, type StoredJob } from "./store";

/** The platform's alarm retry count from which the DO re-arms by itself instead of throwing again. */
const LAST_PLATFORM_RETRY = 5;
const FALLBACK_RETRY_MS = 60_000;
/** Worker error codes of a run that failed moving its bytes, not computing them: worth a resubmission. */
const TRANSFER_FAILURES = ["input_download_failed", "output_upload_failed"];

export type CancelResult = { ok: true; job: JobRecord } | { ok: false; reason: "not_found" } | TransitionRefusal;

/**
 * One job: its record (SQLite, see schema.ts and store.ts), its state machine and its alarm loop. The alarm does what
 * is due (submit, poll, retry, time out), saves, mirrors the change to the D1 index, then re-arms. Unexpected
 * errors are left to throw so the platform retries the alarm.
 */
export class JobDO extends DurableObject<Env> {
	readonly #store: JobStore;
	/** Events (SSE) and webhooks of the job's changes; the store calls it at each save point. */
	readonly #notifier: JobNotifier;
	#log: Logger;
	/** Alarm steps run one at a time: a manual run (tests) and a timer-fired one must not interleave. */
	#chain: Promise<void> = Promise.resolve();

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		const sql = openJobSql(ctx.storage.sql);
		this.#notifier = new JobNotifier(sql);
		this.#store = new JobStore(sql, this.#notifier);
		this.#log = createLogger({ component: "job_do" });
	}

	/** Creates the job and arms the first alarm (submit at once). Creating an existing job returns it unchanged. */
	async create(spec: JobSpec): Promise<JobRecord> {
		const existing = this.#store.load();
		if (existing) return existing;
		const now = Date.now();
		const job: StoredJob = {
			...initialState(),
			spec,
			updated_at: new Date(now).toISOString(),
			next_at: now,
			transient_failures: 0,
			deadline_at: deadlineAt(Date.parse(spec.created_at), spec.deadline_s),
			index_synced: false,
		};
		this.#store.insert(job);
		await this.ctx.storage.setAlarm(now);
		// The job is accepted once stored and armed; if D1 hiccups here, the first alarm step indexes it.
		try {
			await this.#syncIndex(job);
		} catch (err) {
			this.#log.error("index_sync_failed", { error: err instanceof Error ? err.message : String(err) });
		}
		return job;
	}

	/** The job, or null when this object holds none. Re-arms a lost alarm, so a live job always moves on. */
	async get(): Promise<JobRecord | null> {
		const job = this.#store.load();
		if (job && !isTerminal(job.status) && (await this.ctx.storage.getAlarm()) === null) {
			await this.ctx.storage.setAlarm(job.next_at ?? Date.now());
		}
		return job;
	}

	/**
	 * The job's event stream (SSE bytes, see events.ts): the current state, or with
	 * `lastEventId` the stored events after it, then live `status` and `progress` events until a terminal status.
	 * Null when the job does not exist, or when a resume of a finished job has nothing left to send.
	 */
	async events(lastEventId: number | null): Promise<ReadableStream<Uint8Array> | null> {
		const job = this.#store.load();
		if (!job) return null;
		return this.#notifier.subscribe(job, lastEventId);
	}

	/** Test and debugging aid: how many event streams are open. */
	async listeners(): Promise<number> {
		return this.#notifier.listeners();
	}

	/** Test and debugging aid: the stored change history. */
	async history(): Promise<{ at: string; status: string; event: string; detail: string | null }[]> {
		return this.#store.history();
	}

	/**
	 * Runs the next step now instead of when due: a backend says the job changed (a RunPod webhook), or its
	 * BackendDO granted it a slot. Only a hint: the step confirms with the backend (`/status`, admission), so a
	 * repeated call costs one step at most.
	 */
	async poke(): Promise<boolean> {
		const job = this.#store.load();
		if (!job || isTerminal(job.status)) return false;
		// Through the save point, so `next_at` says the step is due now (an alarm that finds it in the future may
		// only send webhook deliveries); "polled" keeps the history free of pokes.
		await this.#schedule(job, 0, "polled");
		return true;
	}

	/**
	 * Cancels a job that is not terminal (and, best effort, its remote run). A terminal job is refused
	 * (`reason: "terminal"`), which the API answers with 409.
	 */
	async cancel(): Promise<CancelResult> {
		const job = this.#store.load();
		if (!job) return { ok: false, reason: "not_found" };
		const applied = this.#apply(job, { type: "canceled", at: new Date().toISOString() });
		if (!applied.ok) return applied;
		this.#store.save(applied.job, "canceled");
		await this.ctx.storage.deleteAlarm();
		await this.#armDeliveries();
		await this.#syncIndexOrRetryLater(applied.job);
		recordJobMetrics(this.env, snapshotOf(applied.job));
		await this.#abortOutputUpload();
		if (job.remote_id) await this.#cancelRemote(job, job.remote_id);
		return { ok: true, job: applied.job };
	}

	/** Runs one step of the job loop; see the class comment. */
	override async alarm(info?: AlarmInvocationInfo): Promise<void> {
		const step = this.#chain.then(() => this.#tick());
		// The chain continues after a failed step; the failure itself still reaches the platform (retry).
		this.#chain = step.catch(() => undefined);
		try {
			await step;
		} catch (err) {
			// The platform retries a throwing alarm a few times (6), then drops it. Before that happens, keep the job
			// alive ourselves, so it still reaches a terminal state (at the latest, its deadline).
			if ((info?.retryCount ?? 0) < LAST_PLATFORM_RETRY) throw err;
			this.#log.error("alarm_failed", { error: err instanceof Error ? err.message : String(err) });
			const job = this.#store.load();
			if (job && (!isTerminal(job.status) || !job.index_synced)) {
				const retryAt = Date.now() + FALLBACK_RETRY_MS;
				const deadline = Math.max(job.deadline_at, Date.now());
				await this.ctx.storage.setAlarm(isTerminal(job.status) ? retryAt : Math.min(retryAt, deadline));
			}
		}
	}

	/**
	 * One alarm: due webhook deliveries go out first, then the job step, then the alarm is moved earlier if a
	 * delivery is due before the job's next step. An alarm that fired only for deliveries (the job's own step is
	 * not due yet) skips the step, so a webhook retry never makes the job poll its backend early.
	 */
	async #tick(): Promise<void> {
		const started = Date.now();
		const before = this.#store.load();
		const deliveriesWereDue = before ? await this.#notifier.sendDue(this.env, before, this.#log) : false;
		// Reload: the sends took time, and a cancel may have landed meanwhile.
		const job = this.#store.load();
		const stepDue =
			!job || isTerminal(job.status) || job.next_at === null || job.next_at <= Date.now() || !job.index_synced;
		if (deliveriesWereDue && !stepDue && job?.next_at) await this.ctx.storage.setAlarm(job.next_at);
		else await this.#step();
		await this.#armDeliveries(started);
	}

	/**
	 * Arms the alarm for the next pending webhook attempt when that comes before the alarm already set (or none).
	 * Inside an alarm, `since` is when it began: an alarm time before it is the one now firing, not a future one.
	 */
	async #armDeliveries(since?: number): Promise<void> {
		const due = this.#notifier.nextDeliveryAt();
		if (due === null) return;
		const current = await this.ctx.storage.getAlarm();
		const stale = current !== null && since !== undefined && current < since;
		if (current === null || stale || due < current) await this.ctx.storage.setAlarm(due);
	}

	async #step(): Promise<void> {
		const job = this.#store.load();
		if (!job) return;
		this.#log = createLogger({ component: "job_do", job_id: job.spec.id });
		if (!job.index_synced) await this.#syncIndex(job);
		if (isTerminal(job.status)) return;
		const now = Date.now();
		if (now >= job.deadline_at) {
			await this.#fail(job, {
				code: "timeout",
				message: `The job did not finish within ${job.spec.deadline_s} s.`,
			});
			if (job.remote_id) await this.#cancelRemote(job, job.remote_id);
			return;
		}
		const loaded = await loadBackend(this.env, job.spec.backend.name, jobContext(job));
		if (!loaded) {
			await this.#fail(job, {
				code: "backend_unavailable",
				message: `The backend "${job.spec.backend.name}" no longer exists.`,
			});
			return;
		}
		if (!loaded.build.ok) {
			await this.#fail(job, {
				code: "backend_unsupported",
				message: `Backend kind "${loaded.build.kind}" is not supported yet.`,
			});
			return;
		}
		if (job.remote_id) await this.#poll(loaded.build.backend, job.remote_id);
		else await this.#submit(job, loaded.build.backend, loaded.row);
	}

	async #submit(job: StoredJob, backend: GpuBackend, row: BackendRow): Promise<void> {
		// Admission (src/backends/routing.ts): a slot on the backend, unless its circuit is open.
		const admission = await admitJob(this.env, job.spec, row);
		if (!admission.ok) {
			if (admission.reason === "circuit_open" && !job.spec.backend.pinned) {
				const target = await failoverTarget(this.env, job.spec);
				if (target) return this.#moveTo(target, admission.detail);
			}
			// Reload: a cancel may have landed while admission was asked.
			const current = this.#store.load();
			if (!current || isTerminal(current.status)) return;
			return this.#schedule(current, admission.delayMs, "waiting", admission.detail);
		}
		// A resubmission or failover signs a new output target: the previous multipart upload is aborted, not
		// reused (why: see buildJobInput), and the video goes to a key of its own, so a run given up on cannot
		// overwrite what this one writes.
		await this.#abortOutputUpload();
		const videoKey = objectKeys.videoKey(job.spec.account_id, job.spec.id, submissionOf(job.output_key) + 1);
		this.#store.setOutputKey(videoKey);
		const { input, multipart_upload_id } = await buildJobInput(this.env, job.spec, videoKey);
		this.#store.setOutputUpload(multipart_upload_id);
		const result = await backend.submit(input);
		await reportOutcome(this.env, row.name, result);
		// Reload: a cancel may have landed while the request was out.
		const fresh = this.#store.load();
		if (!fresh || isTerminal(fresh.status)) {
			if (result.ok && fresh) await this.#cancelRemote(fresh, result.remoteId);
			if (fresh) await this.#abortOutputUpload();
			return;
		}
		if (!result.ok) return this.#onFailure(fresh, result);
		const applied = this.#apply(fresh, { type: "submitted", remoteId: result.remoteId });
		if (!applied.ok) return;
		applied.job.transient_failures = 0;
		const price = result.pricePerSecondUsd;
		if (price !== undefined && price !== applied.job.spec.backend.price_per_second_usd) {
			// The machine's own price (a rented vast.ai instance) is what this job's GPU time costs.
			applied.job.spec = { ...applied.job.spec, backend: { ...applied.job.spec.backend, price_per_second_usd: price } };
			this.#store.updateSpec(applied.job.spec);
		}
		await this.#schedule(applied.job, this.#pollDelay(applied.job), "submitted");
	}

	async #poll(backend: GpuBackend, remoteId: string): Promise<void> {
		const result = await backend.poll(remoteId);
		const fresh = this.#store.load();
		if (!fresh || isTerminal(fresh.status) || fresh.remote_id !== remoteId) return;
		if (!result.ok) return this.#onFailure(fresh, result);
		fresh.transient_failures = 0;
		const at = new Date().toISOString();
		switch (result.state) {
			case "queued":
				return this.#schedule(fresh, this.#pollDelay(fresh), "polled");
			case "running": {
				const event: JobEvent = result.progress
					? { type: "progress", at, progress: result.progress }
					: { type: "started", at };
				const applied = this.#apply(fresh, event);
				if (!applied.ok) return;
				// History records changes, not every identical poll.
				const changed =
					applied.job.status !== fresh.status ||
					JSON.stringify(applied.job.progress) !== JSON.stringify(fresh.progress);
				await this.#schedule(applied.job, this.#pollDelay(applied.job), changed ? event.type : "polled");
				return;
			}
			case "completed":
				return this.#complete(fresh, result);
			case "failed": {
				const error = result.error ?? { code: "inference_failed", message: "The GPU job failed." };
				if (TRANSFER_FAILURES.includes(error.code) && fresh.attempts < MAX_ATTEMPTS) {
					return this.#retryTransfer(fresh, error, this.#cost(fresh, result.executionMs));
				}
				return this.#fail(fresh, error, this.#cost(fresh, result.executionMs));
			}
			case "canceled":
				return this.#fail(fresh, { code: "canceled_by_backend", message: "The backend canceled the job." });
			case "lost":
				return this.#lost(fresh);
		}
	}

	/** The backend forgot the job (404): resubmit while under the attempt limit, else fail. */
	async #lost(job: StoredJob): Promise<void> {
		if (job.attempts >= MAX_ATTEMPTS) {
			return this.#fail(job, {
				code: "lost",
				message: `The backend lost the job ${job.attempts} times; giving up.`,
			});
		}
		const applied = this.#apply(job, { type: "lost" });
		if (applied.ok) await this.#schedule(applied.job, 0, "lost");
	}

	/**
	 * The worker ran but could not move the bytes (its signed GETs or PUT failed: the Worker's storage routes were
	 * down, restarting, or the URLs expired). Nothing is wrong with the job itself: it is submitted again, with
	 * fresh URLs, after a backoff, while under the attempt limit.
	 */
	async #retryTransfer(job: StoredJob, error: JobError, cost: JobCost | null): Promise<void> {
		// The run happened and was billed: its GPU time stays on the job.
		const applied = this.#apply(job, { type: "lost", cost });
		if (!applied.ok) return;
		const delay = retryDelayMs(job.attempts);
		await this.#schedule(applied.job, delay, "transfer_failed", `${error.code}: ${error.message}`);
	}

	/**
	 * Verifies the stored video against what the worker reported before declaring success. A worker that wrote
	 * through the part URLs reports `parts`: the multipart upload is completed with them first. One that used
	 * the single PUT leaves the upload unused: `#finish` aborts it.
	 */
	async #complete(job: StoredJob, result: PollStatus): Promise<void> {
		const { parts, ...reported } = (result.output ?? {}) as VideoOutput;
		const cost = this.#cost(job, result.executionMs);
		const key = jobVideoKey(job);
		const refused = parts ? await this.#completeOutputParts(key, parts) : null;
		if (refused) {
			const current = this.#store.load();
			if (!current || isTerminal(current.status)) return;
			return this.#fail(current, { code: "output_verification_failed", message: refused }, cost);
		}
		const verified = await verifyVideo(this.env.BUCKET, key, reported);
		const fresh = this.#store.load();
		if (!fresh || isTerminal(fresh.status)) return;
		if (!verified.ok) {
			return this.#fail(fresh, { code: "output_verification_failed", message: verified.message }, cost);
		}
		const at = new Date().toISOString();
		const output = { video: { ...reported, content_type: "video/mp4", sha256: verified.sha256 } };
		const applied = this.#apply(fresh, { type: "succeeded", at, output, cost });
		if (applied.ok) await this.#finish(applied.job, "succeeded", undefined, { delayMs: result.delayMs });
	}

	/** Transient failures are retried with jittered backoff (honouring Retry-After); permanent ones fail the job. */
	async #onFailure(job: StoredJob, failure: BackendFailure): Promise<void> {
		// Failover: a job the backend refused before it ever ran moves to the next eligible backend.
		if (mayFailover(job.spec, job.remote_id, failure, job.transient_failures + 1)) {
			const target = await failoverTarget(this.env, job.spec);
			if (target) return this.#moveTo(target, failure.message);
			// Reload: a cancel may have landed while the router was asked.
			const current = this.#store.load();
			if (!current || isTerminal(current.status)) return;
			job = current;
		}
		if (failure.kind === "permanent") {
			return this.#fail(job, { code: "backend_error", message: failure.message });
		}
		job.transient_failures += 1;
		this.#log.warn("backend_transient_failure", { message: failure.message, failures: job.transient_failures });
		const delay = retryDelayMs(job.transient_failures, failure.retryAfterMs);
		await this.#schedule(job, delay, "retry", failure.message);
	}

	/**
	 * Routes the job (reloaded: a cancel or a submission may have landed meanwhile) to another backend if it still
	 * has not run: new spec, slot given back, submitted at once.
	 */
	async #moveTo(target: BackendRow, reason: string): Promise<void> {
		const job = this.#store.load();
		if (!job || isTerminal(job.status) || job.remote_id !== null) return;
		const from = job.spec.backend.name;
		const spec = movedSpec(job.spec, target);
		this.#store.updateSpec(spec);
		this.#log.warn("job_failover", { from, to: target.name, reason });
		// Saved (synchronously, inside #schedule) before any await, so nothing can land in between.
		await this.#schedule({ ...job, spec, transient_failures: 0 }, 0, "failover", `${from} → ${target.name}: ${reason}`);
		await releaseSlot(this.env, from, job.spec.id);
	}

	async #fail(job: StoredJob, error: JobError, cost?: JobCost | null): Promise<void> {
		const applied = this.#apply(job, { type: "failed", at: new Date().toISOString(), error, cost });
		if (applied.ok) await this.#finish(applied.job, "failed", `${error.code}: ${error.message}`);
	}

	/** Saves a terminal job, drops the alarm and mirrors the index (a D1 failure throws: the alarm retries). */
	async #finish(job: StoredJob, event: string, detail?: string, timings: JobTimings = {}): Promise<void> {
		job.next_at = null;
		this.#store.save(job, event, detail);
		// Before the index sync (which may throw and leave a terminal job the alarm no longer steps).
		await this.#abortOutputUpload();
		await this.#sweepOutputs(job);
		await this.ctx.storage.deleteAlarm();
		// Webhooks of the job (its terminal event above all) may still be pending: keep the alarm for them.
		await this.#armDeliveries();
		await this.#syncIndex(job);
		this.#log.info("job_finished", { status: job.status, error_code: job.error?.code, attempts: job.attempts });
		recordJobMetrics(this.env, snapshotOf(job), { ...timings, outputBytes: job.output?.video.size });
	}

	/** Saves the job with its next alarm (capped at the deadline), arms it, then mirrors the index. */
	async #schedule(job: StoredJob, delayMs: number, event: string, detail?: string): Promise<void> {
		job.next_at = nextAlarmAt(Date.now(), delayMs, job.deadline_at);
		job.updated_at = new Date().toISOString();
		this.#store.save(job, event, detail);
		await this.ctx.storage.setAlarm(job.next_at);
		await this.#syncIndex(job);
	}

	/** Applies an event through the pure state machine; the caller saves (with its next alarm). */
	#apply(job: StoredJob, event: JobEvent): { ok: true; job: StoredJob } | TransitionRefusal {
		const result = transition(job, event);
		if (!result.ok) return result;
		const next: StoredJob = { ...job, ...result.state, updated_at: new Date().toISOString() };
		if (isTerminal(next.status)) next.next_at = null;
		return { ok: true, job: next };
	}

	#pollDelay(job: StoredJob): number {
		return pollDelayMs(Date.now() - Date.parse(job.spec.created_at));
	}

	#cost(job: StoredJob, executionMs: number | undefined): JobCost | null {
		if (executionMs === undefined) return null;
		const gpu_seconds = Math.round(executionMs) / 1000;
		const usd = Math.round(gpu_seconds * job.spec.backend.price_per_second_usd * 1e6) / 1e6;
		return { gpu_seconds, usd };
	}

	async #syncIndex(job: StoredJob): Promise<void> {
		await upsertJobIndex(this.env.DB, snapshotOf(job));
		this.#store.markIndexSynced(job.updated_at);
	}

	/** For RPC paths (cancel): a D1 hiccup must not fail the call; the alarm re-syncs shortly. */
	async #syncIndexOrRetryLater(job: StoredJob): Promise<void> {
		try {
			await this.#syncIndex(job);
		} catch (err) {
			this.#log.error("index_sync_failed", { error: err instanceof Error ? err.message : String(err) });
			await this.ctx.storage.setAlarm(Date.now() + 1000);
		}
	}

	/**
	 * Completes the output multipart upload with the worker's reported parts; the refusal's message, or null.
	 * With none open (never opened, or completed by a step that stopped before saving), verification decides.
	 */
	async #completeOutputParts(key: string, parts: { part_number: number; etag: string }[]): Promise<string | null> {
		const uploadId = this.#store.load()?.output_upload_id;
		if (!uploadId) return null;
		const done = await completeOutputMultipart(this.env, key, uploadId, parts);
		if (!done.ok)
			return `The video parts the backend reported could not be assembled (${done.reason}): ${done.message}`;
		this.#store.setOutputUpload(null);
		return null;
	}

	/** Best effort: aborts the job's open output multipart upload (the worker used `put`, failed, or is replaced). */
	async #abortOutputUpload(): Promise<void> {
		const job = this.#store.load();
		const uploadId = job?.output_upload_id;
		if (!job || !uploadId) return;
		// Forgotten first (synchronously), so a concurrent caller does not abort it twice.
		this.#store.setOutputUpload(null);
		await abortOutputMultipart(this.env, jobVideoKey(job), uploadId);
	}

	/**
	 * Best effort: deletes the videos of submissions other than the one that succeeded (all of them when the job
	 * did not succeed): runs given up on may have written theirs, and nothing serves them. Submissions are
	 * numbered, so their keys are known without listing the bucket: a job that succeeded on its first costs nothing.
	 */
	async #sweepOutputs(job: StoredJob): Promise<void> {
		const last = submissionOf(job.output_key);
		const keep = job.status === "succeeded" ? last : 0;
		const stale: string[] = [];
		for (let n = 1; n <= last; n++) {
			if (n !== keep) stale.push(objectKeys.videoKey(job.spec.account_id, job.spec.id, n));
		}
		try {
			// R2 deletes at most 1000 keys per call.
			for (let i = 0; i < stale.length; i += 1000) await this.env.BUCKET.delete(stale.slice(i, i + 1000));
		} catch (err) {
			this.#log.warn("output_sweep_failed", { error: err instanceof Error ? err.message : String(err) });
		}
	}

	/** Best effort: the job is already decided here; a remote run left behind only costs GPU time. */
	async #cancelRemote(job: StoredJob, remoteId: string): Promise<void> {
		try {
			const loaded = await loadBackend(this.env, job.spec.backend.name, jobContext(job));
			if (!loaded?.build.ok) return;
			const result = await loaded.build.backend.cancel(remoteId);
			if (!result.ok) this.#log.warn("remote_cancel_failed", { message: result.message });
		} catch (err) {
			this.#log.warn("remote_cancel_failed", { error: err instanceof Error ? err.message : String(err) });
		}
	}
}
