import { DurableObject } from "cloudflare:workers";
import { loadBackend } from "../src/backends/registry";
import type { BackendFailure, GpuBackend, PollStatus } from "../src/backends/types";
import { upsertJobIndex } from "../src/db/jobs";
import { deadlineAt, MAX_ATTEMPTS, nextAlarmAt, pollDelayMs, retryDelayMs } from "../src/jobs/backoff";
import { buildJobInput } from "../src/jobs/input";
import { type JobRecord, type JobSpec, snapshotOf } from "../src/jobs/record";
import {
	initialState,
	isTerminal,
	type JobCost,
	type JobError,
	type JobEvent,
	type TransitionRefusal,
	transition,
	type VideoOutput,
} from "../src/jobs/state";
import { JobStore, type StoredJob } from "../src/jobs/store";
import { verifyVideo } from "../src/jobs/verify";
import { createLogger, type Logger } from "../src/lib/logger";
import { objectKeys } from "../src/storage";

/** The platform's alarm retry count from which the DO re-arms by itself instead of throwing again. */
const LAST_PLATFORM_RETRY = 5;
const FALLBACK_RETRY_MS = 60_000;

export type CancelResult = { ok: true; job: JobRecord } | { ok: false; reason: "not_found" } | TransitionRefusal;

/**
 * One job: its record (SQLite, see src/jobs/store.ts), its state machine and its alarm loop. The alarm does what
 * is due (submit, poll, retry, time out), saves, mirrors the change to the D1 index, then re-arms. Unexpected
 * errors are left to throw so the platform retries the alarm.
 */
export class JobDO extends DurableObject<Env> {
	readonly #store: JobStore;
	#log: Logger;
	/** Alarm steps run one at a time: a manual run (tests) and a timer-fired one must not interleave. */
	#chain: Promise<void> = Promise.resolve();

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.#store = new JobStore(ctx.storage.sql);
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

	/** Test and debugging aid: the stored change history. */
	async history(): Promise<{ at: string; status: string; event: string; detail: string | null }[]> {
		return this.#store.history();
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
		await this.#syncIndexOrRetryLater(applied.job);
		if (job.remote_id) await this.#cancelRemote(job, job.remote_id);
		return { ok: true, job: applied.job };
	}

	/** Runs one step of the job loop; see the class comment. */
	override async alarm(info?: AlarmInvocationInfo): Promise<void> {
		const step = this.#chain.then(() => this.#step());
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
		const loaded = await loadBackend(this.env, job.spec.backend.name);
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
		else await this.#submit(job, loaded.build.backend);
	}

	async #submit(job: StoredJob, backend: GpuBackend): Promise<void> {
		const input = await buildJobInput(this.env, job.spec);
		const result = await backend.submit(input);
		// Reload: a cancel may have landed while the request was out.
		const fresh = this.#store.load();
		if (!fresh || isTerminal(fresh.status)) {
			if (result.ok && fresh) await this.#cancelRemote(fresh, result.remoteId);
			return;
		}
		if (!result.ok) return this.#onFailure(fresh, result);
		const applied = this.#apply(fresh, { type: "submitted", remoteId: result.remoteId });
		if (!applied.ok) return;
		applied.job.transient_failures = 0;
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
			case "failed":
				return this.#fail(
					fresh,
					result.error ?? { code: "inference_failed", message: "The GPU job failed." },
					this.#cost(fresh, result.executionMs),
				);
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

	/** Verifies the stored video against what the worker reported before declaring success. */
	async #complete(job: StoredJob, result: PollStatus): Promise<void> {
		const reported = result.output as VideoOutput;
		const cost = this.#cost(job, result.executionMs);
		const verified = await verifyVideo(
			this.env.BUCKET,
			objectKeys.videoKey(job.spec.account_id, job.spec.id),
			reported,
		);
		const fresh = this.#store.load();
		if (!fresh || isTerminal(fresh.status)) return;
		if (!verified.ok) {
			return this.#fail(fresh, { code: "output_verification_failed", message: verified.message }, cost);
		}
		const at = new Date().toISOString();
		const output = { video: { ...reported, content_type: "video/mp4", sha256: verified.sha256 } };
		const applied = this.#apply(fresh, { type: "succeeded", at, output, cost });
		if (applied.ok) await this.#finish(applied.job, "succeeded");
	}

	/** Transient failures are retried with jittered backoff (honouring Retry-After); permanent ones fail the job. */
	async #onFailure(job: StoredJob, failure: BackendFailure): Promise<void> {
		if (failure.kind === "permanent") {
			return this.#fail(job, { code: "backend_error", message: failure.message });
		}
		job.transient_failures += 1;
		this.#log.warn("backend_transient_failure", { message: failure.message, failures: job.transient_failures });
		const delay = retryDelayMs(job.transient_failures, failure.retryAfterMs);
		await this.#schedule(job, delay, "retry", failure.message);
	}

	async #fail(job: StoredJob, error: JobError, cost?: JobCost | null): Promise<void> {
		const applied = this.#apply(job, { type: "failed", at: new Date().toISOString(), error, cost });
		if (applied.ok) await this.#finish(applied.job, "failed", `${error.code}: ${error.message}`);
	}

	/** Saves a terminal job, drops the alarm and mirrors the index (a D1 failure throws: the alarm retries). */
	async #finish(job: StoredJob, event: string, detail?: string): Promise<void> {
		job.next_at = null;
		this.#store.save(job, event, detail);
		await this.ctx.storage.deleteAlarm();
		await this.#syncIndex(job);
		this.#log.info("job_finished", { status: job.status, error_code: job.error?.code, attempts: job.attempts });
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

	/** Best effort: the job is already decided here; a remote run left behind only costs GPU time. */
	async #cancelRemote(job: StoredJob, remoteId: string): Promise<void> {
		try {
			const loaded = await loadBackend(this.env, job.spec.backend.name);
			if (!loaded?.build.ok) return;
			const result = await loaded.build.backend.cancel(remoteId);
			if (!result.ok) this.#log.warn("remote_cancel_failed", { message: result.message });
		} catch (err) {
			this.#log.warn("remote_cancel_failed", { error: err instanceof Error ? err.message : String(err) });
		}
	}
}
