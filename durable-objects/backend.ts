import { DurableObject } from "cloudflare:workers";
import { admit, type Breaker, closedBreaker, record } from "../src/backends/breaker";
import type { AcquireRequest, AcquireResult, BackendSnapshot } from "../src/backends/types";
import { VastaiClient } from "../src/backends/vastai-api";
import {
	deletionBackoffMs,
	type Ensure,
	ensureInstance,
	instanceHealth,
	loadVastSettings,
	noOfferSince,
	reconcileFleet,
	type VastDeleting,
	type VastRemaining,
	type VastSettings,
	type VastState,
	type VastStatus,
	type VastWaitNote,
} from "../src/backends/vastai-fleet";
import { deleteBackend } from "../src/db/backends";
import { rentalEnded, rentalReady, rentalStarted } from "../src/db/rentals";
import {
	type Estimate,
	estimateExecution,
	FIT_WINDOW,
	meanDelayMs,
	queueWaitMs,
	type RunSample,
} from "../src/jobs/eta";
import { isTerminal } from "../src/jobs/state";
import { createLogger } from "../src/lib/logger";
import { BACKEND_META, openBackendSql } from "./backend-schema";
import type { ObjectSql, SqlRow } from "./sql";

/** While jobs wait, the object re-checks its slot holders this often (a finished job frees its slot by then). */
export const RECONCILE_MS = 2_000;
/** A vastai backend's lifecycle step (idle destroy, orphans) runs this often while it has an instance. */
export const VAST_TICK_MS = 60_000;
export const VAST_ORPHAN_TICK_MS = 10 * 60_000;
/** While jobs hold slots on a vastai instance, its vast.ai status is checked this often. */
export const VAST_WATCH_MS = 30_000;
/** Completed runs kept for the estimates, and how many of the newest say how fast the backend drains its queue. */
const RUNS_KEPT = 500;
const DRAIN_WINDOW = 20;
/** When slots are granted, this many of the jobs still waiting (the nearest) are told their new place at once. */
const REFRESH_ON_GRANT = 5;
/** At most this many holders are checked per pass, so a large backend is swept over a few passes. */
const CHECK_BATCH = 25;

/**
 * The fair order of the queue: the account holding the fewest slots first, then the one served longest ago (round
 * robin between accounts that hold none), then the account waiting longest; within one account, its higher
 * priority first, then its oldest request. Every key before the priority is the account's, so a priority only
 * reorders an account's own jobs and never puts them before another account's.
 */
export const FAIR_ORDER = `ORDER BY (SELECT COUNT(*) FROM slot s WHERE s.account_id = w.account_id),
	COALESCE((SELECT v.at FROM served v WHERE v.account_id = w.account_id), 0),
	(SELECT MIN(x.seq) FROM waiting x WHERE x.account_id = w.account_id), w.priority DESC, w.seq`;

/**
 * How many waiting jobs come before one in FAIR_ORDER, without sorting the queue: every job of each account whose
 * keys (slots held, last served, oldest request) come first, plus the account's own jobs of higher priority or
 * older at the same one. The keys are worked out once per account, not once per waiting job. No row: not waiting.
 */
export const FAIR_AHEAD = `WITH accounts AS (
		SELECT w.account_id, COUNT(*) AS n, MIN(w.seq) AS oldest,
			(SELECT COUNT(*) FROM slot s WHERE s.account_id = w.account_id) AS held,
			COALESCE((SELECT v.at FROM served v WHERE v.account_id = w.account_id), 0) AS served
		FROM waiting w GROUP BY w.account_id
	), me AS (
		SELECT w.account_id, w.priority, w.seq, a.held, a.served, a.oldest
		FROM waiting w JOIN accounts a ON a.account_id = w.account_id WHERE w.job_id = ?
	)
	SELECT (SELECT COALESCE(SUM(a.n), 0) FROM accounts a
			WHERE (a.held, a.served, a.oldest) < (me.held, me.served, me.oldest))
		+ (SELECT COUNT(*) FROM waiting w
			WHERE w.account_id = me.account_id AND (-w.priority, w.seq) < (-me.priority, me.seq)) AS ahead
	FROM me`;

/**
 * One GPU backend's admission and health (one object per backend name). Jobs hold a slot from their submission
 * until they end or move elsewhere; at most `max_concurrency` hold one. The others wait in a queue that is fair
 * across accounts: a freed slot goes to the waiting account holding the fewest slots, oldest request first, so one
 * account's burst cannot starve another (ties go to the account served longest ago). The circuit breaker (src/backends/breaker.ts) refuses jobs while the
 * backend keeps failing. A job gives its slot back when it ends or moves (`release`), and the object also asks each
 * holder's JobDO whether it still runs here, which recovers the slot of a job whose release was lost.
 */
export class BackendDO extends DurableObject<Env> {
	readonly #sql: ObjectSql;
	readonly #log = createLogger({ component: "backend_do" });
	/** The vast.ai lifecycle steps, one after another (`#exclusive`). */
	#lifecycle: Promise<void> = Promise.resolve();
	/** The ensure step in flight, which every caller meanwhile awaits. */
	#ensuring: Promise<Ensure> | null = null;
	/** When the holders were last asked whether they still run here (epoch ms; 0: not since the object started). */
	#reconciledAt = 0;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.#sql = openBackendSql(ctx.storage.sql);
	}

	/**
	 * Asks for a slot for `jobId` (idempotent: a holder is granted again). Refused while the breaker is open
	 * (`retry_at`), or queued when all `maxConcurrency` slots are held (`position` in the fair order, 1-based).
	 */
	async acquire(req: AcquireRequest): Promise<AcquireResult> {
		const { jobId, accountId, maxConcurrency } = req;
		if (this.#sql.meta(BACKEND_META.name) !== req.backend) this.#sql.setMeta(BACKEND_META.name, req.backend);
		if (this.#sql.meta(BACKEND_META.max) !== String(maxConcurrency))
			this.#sql.setMeta(BACKEND_META.max, String(maxConcurrency));
		const now = Date.now();
		const estimated = (queuedAhead: number | null) =>
			req.work ? { estimate: this.#estimate(req.work, queuedAhead, maxConcurrency, now) } : {};
		// The breaker applies to holders too: a job retrying its submission must not hammer a failing backend.
		const breaker = this.#breaker();
		const decision = admit(breaker, now);
		if (!decision.allow) {
			const refused = breaker.refusal ? { refusal: breaker.refusal } : {};
			return { granted: false, reason: "circuit_open", retry_at: decision.retryAtMs, ...refused, ...estimated(null) };
		}
		if (this.#holds(jobId)) {
			if (decision.probe) this.#saveBreaker(decision.breaker);
			return { granted: true, probe: decision.probe, ...estimated(null) };
		}
		this.#sql.run(
			"INSERT OR IGNORE INTO waiting (job_id, account_id, at, priority) VALUES (?, ?, ?, ?)",
			jobId,
			accountId,
			now,
			req.priority ?? 1,
		);
		// Ended jobs give their slots back themselves; asking every holder is the net for a release that was lost, so
		// a stream of arrivals at a full backend asks them once per RECONCILE_MS, not once per arrival.
		if (this.#count("slot") >= maxConcurrency && now - this.#reconciledAt >= RECONCILE_MS) await this.#reconcile(now);
		this.#grant(maxConcurrency, now, jobId);
		if (this.#holds(jobId)) {
			if (decision.probe) this.#saveBreaker(decision.breaker);
			return { granted: true, probe: decision.probe, ...estimated(null) };
		}
		await this.#armReconcile();
		const position = this.#position(jobId);
		const ahead = this.#count("slot") + Math.max(0, position - 1);
		return { granted: false, reason: "full", position, ahead, ...estimated(position - 1) };
	}

	/** Records a completed run, for the estimates; only the newest `RUNS_KEPT` are kept. */
	async recordRun(run: RunSample): Promise<void> {
		this.#sql.run(
			"INSERT INTO runs (model, units, exec_ms, delay_ms, at) VALUES (?, ?, ?, ?, ?)",
			run.model,
			run.units,
			Math.round(run.exec_ms),
			run.delay_ms === null ? null : Math.round(run.delay_ms),
			Date.now(),
		);
		this.#sql.run("DELETE FROM runs WHERE seq <= (SELECT MAX(seq) FROM runs) - ?", RUNS_KEPT);
	}

	/**
	 * A job's estimate from the recorded runs: its execution from its model's runs here (or the manifest figure),
	 * its wait (when it is queued, `queuedAhead` jobs before it) from how long the holders have held their slots
	 * and the backend's recent run times, and the backend's queue delay.
	 */
	#estimate(
		work: NonNullable<AcquireRequest["work"]>,
		queuedAhead: number | null,
		slots: number,
		now: number,
	): Estimate {
		const runs = this.#sql.all<RunSample & SqlRow>(
			"SELECT model, units, exec_ms, delay_ms FROM runs WHERE model = ? ORDER BY seq DESC LIMIT ?",
			work.model,
			FIT_WINDOW,
		);
		const execution = estimateExecution(runs, work.units, work.seed_s_per_unit);
		const recent = this.#sql.all<RunSample & SqlRow>(
			"SELECT model, units, exec_ms, delay_ms FROM runs ORDER BY seq DESC LIMIT ?",
			DRAIN_WINDOW,
		);
		// Others' jobs ahead run other models: the backend's recent runs say how fast it drains, whatever they were.
		const delayMs = meanDelayMs(recent);
		const held = recent.map((r) => r.exec_ms + (r.delay_ms ?? 0));
		const runMs = held.length > 0 ? held.reduce((a, b) => a + b, 0) / held.length : execution.exec_ms + delayMs;
		if (queuedAhead === null) return { ...execution, wait_ms: 0, delay_ms: delayMs };
		const heldFor = this.#sql.all<{ at: number }>("SELECT at FROM slot").map((s) => Math.max(0, now - s.at));
		return { ...execution, wait_ms: queueWaitMs(heldFor, queuedAhead, slots, runMs), delay_ms: delayMs };
	}

	/** Gives up `jobId`'s slot or place in the queue (it moved to another backend, or ended). */
	async release(jobId: string): Promise<void> {
		this.#sql.run("DELETE FROM slot WHERE job_id = ?", jobId);
		this.#sql.run("DELETE FROM waiting WHERE job_id = ?", jobId);
		const max = Number(this.#sql.meta(BACKEND_META.max) ?? 0);
		if (max > 0) this.#grant(max, Date.now());
	}

	/**
	 * Records the outcome of a call to the backend for the circuit breaker; `refusal` when the backend refused the
	 * call as it would refuse every job (its key, its endpoint).
	 */
	async report(ok: boolean, refusal?: Breaker["refusal"]): Promise<Breaker> {
		const before = this.#breaker();
		const after = record(before, ok, Date.now(), refusal);
		if (after.state !== before.state) this.#log.warn("breaker_changed", { from: before.state, to: after.state });
		this.#saveBreaker(after);
		return after;
	}

	/** The backend's configuration changed (a new key, say): its breaker starts closed, as for a new backend. */
	async configChanged(): Promise<void> {
		const before = this.#breaker();
		if (before.state === "closed" && !before.refusal && before.failures === 0) return;
		this.#log.info("breaker_reset", { from: before.state });
		this.#saveBreaker(closedBreaker());
	}

	/** Load and health, for routing and the admin API. */
	async snapshot(): Promise<BackendSnapshot> {
		return { in_flight: this.#count("slot"), waiting: this.#count("waiting"), breaker: this.#breaker() };
	}

	/**
	 * `vastai` backends: one step towards a ready instance (src/backends/vastai-fleet.ts). Jobs call it before each
	 * submission; it never waits for the boot, the job retries. Calls that arrive while a step is in flight (the
	 * object takes other calls while it awaits vast.ai) share that step's answer, so simultaneous jobs rent one
	 * instance, and only the step itself writes the state.
	 */
	async vastEnsure(backend: string): Promise<Ensure> {
		if (this.#ensuring) return this.#ensuring;
		const step = this.#exclusive(() => this.#ensureStep(backend));
		this.#ensuring = step;
		try {
			return await step;
		} finally {
			if (this.#ensuring === step) this.#ensuring = null;
		}
	}

	/** The current instance (null: none); `touch` marks it used now, which defers the idle destroy. */
	async vastInstance(touch = false): Promise<VastState | null> {
		const state = this.#vast();
		if (state && touch) await this.#saveVast({ ...state, last_used_at: Date.now() });
		return state;
	}

	/**
	 * A job could not reach ComfyUI on `instanceId`: asks vast.ai whether the instance lives. A dead or vanished
	 * one is destroyed and a replacement rented at once; the answer says whether the job's instance is gone.
	 */
	async vastCheck(backend: string, instanceId: number): Promise<{ gone: boolean; message: string }> {
		const verdict = await this.#exclusive(async () => {
			const state = this.#vast();
			if (state?.instance_id !== instanceId) {
				return { gone: true, dropped: false, message: `The vast.ai instance ${instanceId} was replaced.` };
			}
			const settings = await loadVastSettings(this.env, backend);
			if (!settings) return { gone: false, dropped: false, message: "Not a vastai backend." };
			const health = await instanceHealth(settings, instanceId);
			if (health.kind !== "dead") {
				const message =
					health.kind === "unknown" ? health.message : `vast.ai reports it ${health.status ?? "starting"}.`;
				return { gone: false, dropped: false, message };
			}
			return { gone: true, dropped: true, message: await this.#dropDead(settings, state, health.status) };
		});
		if (verdict.dropped) this.#replace(backend);
		return { gone: verdict.gone, message: verdict.message };
	}

	/** What the admin API shows of a vastai backend: its instance, why jobs wait, and a deletion under way. */
	async vastStatus(): Promise<VastStatus> {
		const state = this.#vast();
		return {
			instance: state
				? {
						id: state.instance_id,
						status: state.status,
						dph_total: state.dph,
						created_at: new Date(state.created_at).toISOString(),
					}
				: null,
			waiting: this.#json<VastWaitNote>(BACKEND_META.vastWait),
			deleting: this.#json<VastDeleting>(BACKEND_META.vastDeleting),
		};
	}

	/**
	 * While jobs wait: free the slots of jobs that ended or moved and hand them on. For a vastai backend: watch the
	 * instance while jobs use it, destroy it once idle, destroy orphans, and carry on a deletion. Then come back
	 * while there is work left.
	 */
	override async alarm(): Promise<void> {
		const now = Date.now();
		await this.#reconcile(now);
		const max = Number(this.#sql.meta(BACKEND_META.max) ?? 0);
		if (max > 0) this.#grant(max, now);
		const name = this.#sql.meta(BACKEND_META.name);
		if (name && (this.#sql.meta(BACKEND_META.vast) !== null || this.#deleting())) {
			const replace = await this.#exclusive(() => this.#vastTick(name, now));
			if (replace) this.#replace(name);
		}
		await this.#arm();
	}

	/**
	 * Destroys the backend's instance and every orphan labelled for it (the backend is being deleted). The backend
	 * stays `deleting` (no instance is rented for it) until vast.ai confirms every destroy; what it would not destroy
	 * is retried by the alarm with backoff, which deletes the backend once nothing is left.
	 */
	async vastShutdown(backend: string): Promise<{ destroyed: number[]; remaining: VastRemaining[] }> {
		if (this.#sql.meta(BACKEND_META.name) !== backend) this.#sql.setMeta(BACKEND_META.name, backend);
		const out = await this.#exclusive(() => this.#shutdownStep(backend, Date.now()));
		await this.#arm();
		return out;
	}

	/** Runs `fn` after every lifecycle step before it: vast.ai calls of one backend never interleave. */
	#exclusive<T>(fn: () => Promise<T>): Promise<T> {
		const run = this.#lifecycle.then(fn);
		this.#lifecycle = run.then(
			() => undefined,
			() => undefined,
		);
		return run;
	}

	async #ensureStep(backend: string): Promise<Ensure> {
		if (this.#sql.meta(BACKEND_META.name) !== backend) this.#sql.setMeta(BACKEND_META.name, backend);
		if (this.#deleting()) {
			return { ready: false, state: null, reason: "misconfigured", message: `Backend ${backend} is being deleted.` };
		}
		const settings = await loadVastSettings(this.env, backend);
		if (!settings) {
			return {
				ready: false,
				state: null,
				reason: "misconfigured",
				message: `Backend ${backend} is not a vastai backend.`,
			};
		}
		const before = this.#vast();
		const wait = this.#json<VastWaitNote>(BACKEND_META.vastWait);
		const now = Date.now();
		const result = await ensureInstance(settings, backend, before, now, noOfferSince(wait, settings, now));
		// Stored before anything else can fail: an instance vast.ai created is never forgotten.
		await this.#saveVast(result.state, "died or did not boot");
		if (result.state && result.state.instance_id !== before?.instance_id) {
			this.#log.info("vast_rented", { backend, instance: result.state.instance_id, dph: result.state.dph });
		}
		if (result.ready) this.#sql.deleteMeta(BACKEND_META.vastWait);
		else {
			const note: VastWaitNote = {
				reason: result.reason,
				message: result.message,
				since: wait?.reason === result.reason ? wait.since : new Date(now).toISOString(),
				no_offer_since: result.noOfferSince ?? null,
				checked_at: now,
			};
			this.#sql.setMeta(BACKEND_META.vastWait, JSON.stringify(note));
		}
		await this.#arm();
		return result;
	}

	/** The alarm's vast.ai step; true when the instance died and a replacement should be rented. */
	async #vastTick(name: string, now: number): Promise<boolean> {
		if (this.#deleting()) {
			await this.#shutdownStep(name, now);
			return false;
		}
		const settings = await loadVastSettings(this.env, name);
		// Gone or no longer vastai: nothing to reconcile with (deleting the backend destroyed its instances).
		if (!settings) {
			this.#sql.deleteMeta(BACKEND_META.vast);
			return false;
		}
		const busy = this.#count("slot") > 0 || this.#count("waiting") > 0;
		const watched = this.#vast();
		// While jobs use the instance, a death is noticed within a tick rather than at the jobs' deadline.
		if (busy && watched?.status === "ready") {
			const health = await instanceHealth(settings, watched.instance_id);
			if (health.kind === "dead") {
				await this.#dropDead(settings, watched, health.status);
				return true;
			}
		}
		const { state, destroyed, remaining } = await reconcileFleet(settings, name, this.#vast(), busy, now);
		if (destroyed.length > 0) this.#log.info("vast_destroyed", { backend: name, instances: destroyed });
		if (remaining.length > 0) this.#log.warn("vast_destroy_refused", { backend: name, remaining });
		// A touch during the calls above moved last_used_at: keep the stored state unless it was destroyed.
		if (state === null) await this.#saveVast(null, "idle");
		return false;
	}

	/** Destroys a dead instance (a refused destroy is left to the orphan sweep) and forgets it. */
	async #dropDead(settings: VastSettings, state: VastState, status: string): Promise<string> {
		const backend = this.#sql.meta(BACKEND_META.name) ?? "";
		const destroyed = await new VastaiClient(settings.apiKey, settings.baseUrl).destroyInstance(state.instance_id);
		await this.#saveVast(null, status);
		this.#log.warn("vast_instance_dead", { backend, instance: state.instance_id, status, destroyed: destroyed.ok });
		return `The vast.ai instance ${state.instance_id} is ${status}; it was destroyed and another is rented.`;
	}

	/** Rents a replacement now and wakes the jobs holding a slot, so they notice their instance is gone. */
	#replace(backend: string): void {
		this.ctx.waitUntil(this.vastEnsure(backend).catch(() => undefined));
		const holders = this.#sql.all<{ job_id: string }>("SELECT job_id FROM slot");
		for (const { job_id } of holders) {
			this.ctx.waitUntil(
				this.env.JOBS.getByName(job_id)
					.poke()
					.catch(() => false),
			);
		}
	}

	/** One try at destroying everything of a backend being deleted; deletes the backend once nothing is left. */
	async #shutdownStep(backend: string, now: number): Promise<{ destroyed: number[]; remaining: VastRemaining[] }> {
		const settings = await loadVastSettings(this.env, backend);
		if (!settings) {
			this.#sql.deleteMeta(BACKEND_META.vastDeleting);
			return { destroyed: [], remaining: [] };
		}
		const before = this.#json<VastDeleting>(BACKEND_META.vastDeleting);
		const { state, destroyed, remaining } = await reconcileFleet(
			{ ...settings, idleDestroyS: 0 },
			backend,
			this.#vast(),
			false,
			now + 1,
		);
		await this.#saveVast(state, "backend deleted");
		if (destroyed.length > 0) this.#log.info("vast_destroyed", { backend, instances: destroyed });
		if (remaining.length === 0) {
			this.#sql.deleteMeta(BACKEND_META.vastDeleting);
			// A deletion the alarm finished: the backend (and its key) goes only now.
			if (before) {
				await deleteBackend(this.env.DB, backend);
				this.#sql.deleteMeta(BACKEND_META.vast);
				this.#sql.deleteMeta(BACKEND_META.vastWait);
				this.#log.info("vast_backend_deleted", { backend, attempts: before.attempts + 1 });
			}
			return { destroyed, remaining };
		}
		const attempts = (before?.attempts ?? 0) + 1;
		const deleting: VastDeleting = {
			since: before?.since ?? new Date(now).toISOString(),
			attempts,
			next_at: new Date(now + deletionBackoffMs(attempts)).toISOString(),
			remaining,
		};
		this.#sql.setMeta(BACKEND_META.vastDeleting, JSON.stringify(deleting));
		this.#log.warn("vast_destroy_refused", { backend, remaining, attempts });
		return { destroyed, remaining };
	}

	#deleting(): VastDeleting | null {
		return this.#json<VastDeleting>(BACKEND_META.vastDeleting);
	}

	#json<T>(key: string): T | null {
		const raw = this.#sql.meta(key);
		return raw ? (JSON.parse(raw) as T) : null;
	}

	/** Re-arms the alarm while jobs wait (soon) or a vastai instance may be billing (each tick). */
	async #arm(): Promise<void> {
		const now = Date.now();
		const due: number[] = [];
		if (this.#count("waiting") > 0) due.push(now + RECONCILE_MS);
		const vast = this.#vast();
		// Jobs on an instance: watch it closely, so a dead one is replaced while they can still finish.
		if (vast && this.#count("slot") > 0) due.push(now + VAST_WATCH_MS);
		// A vastai backend that ever had an instance keeps reconciling (orphans), slowly once it has none.
		if (vast) due.push(now + VAST_TICK_MS);
		else if (this.#sql.meta(BACKEND_META.vast) !== null) due.push(now + VAST_ORPHAN_TICK_MS);
		const deleting = this.#deleting();
		if (deleting) due.push(Math.max(now, Date.parse(deleting.next_at)));
		if (due.length === 0) return;
		const current = await this.ctx.storage.getAlarm();
		const at = Math.min(...due);
		if (current === null || current > at) await this.ctx.storage.setAlarm(at);
	}

	async #armReconcile(): Promise<void> {
		await this.#arm();
	}

	#vast(): VastState | null {
		const raw = this.#sql.meta(BACKEND_META.vast);
		return raw ? (JSON.parse(raw) as VastState | null) : null;
	}

	/**
	 * Stored even when null, so the alarm keeps reconciling orphans of a backend that once had an instance. A change
	 * of instance is a rental starting or ending (`end`: why), recorded in D1 for the usage report.
	 */
	async #saveVast(state: VastState | null, end = "destroyed"): Promise<void> {
		const before = this.#vast();
		this.#sql.setMeta(BACKEND_META.vast, JSON.stringify(state));
		const name = this.#sql.meta(BACKEND_META.name);
		if (!name) return;
		const db = this.env.DB;
		const now = new Date().toISOString();
		const writes: Promise<void>[] = [];
		if (before && before.instance_id !== state?.instance_id) {
			writes.push(rentalEnded(db, name, before.instance_id, now, end));
		}
		if (state && state.instance_id !== before?.instance_id) {
			const at = new Date(state.created_at).toISOString();
			writes.push(rentalStarted(db, { backend: name, instance: state.instance_id, dphUsd: state.dph, at }));
		}
		if (state?.status === "ready" && before?.instance_id === state.instance_id && before.status !== "ready") {
			writes.push(rentalReady(db, name, state.instance_id, now));
		}
		try {
			await Promise.all(writes);
		} catch (err) {
			// The rental record is for reports: losing one must not stop the lifecycle.
			this.#log.warn("vast_rental_record_failed", { error: err instanceof Error ? err.message : String(err) });
		}
	}

	/** Drops holders whose job is gone, terminal, or now routed to another backend. */
	async #reconcile(now: number): Promise<void> {
		this.#reconciledAt = now;
		const holders = this.#sql.all<{ job_id: string }>(
			"SELECT job_id FROM slot WHERE at <= ? ORDER BY at LIMIT ?",
			now,
			CHECK_BATCH,
		);
		const name = this.#sql.meta(BACKEND_META.name);
		await Promise.all(
			holders.map(async ({ job_id }) => {
				try {
					const job = await this.env.JOBS.getByName(job_id).get();
					const moved = name !== null && job !== null && job.spec.backend.name !== name;
					if (!job || isTerminal(job.status) || moved) this.#sql.run("DELETE FROM slot WHERE job_id = ?", job_id);
				} catch (err) {
					// Unknown: keep the slot; the next pass asks again.
					this.#log.warn("holder_check_failed", { error: err instanceof Error ? err.message : String(err) });
				}
			}),
		);
	}

	/** Fills free slots in fair order; wakes each granted job other than `caller` (which learns it from the answer). */
	#grant(max: number, now: number, caller?: string): void {
		let granted = false;
		while (this.#count("slot") < max) {
			const next = this.#sql.first<{ job_id: string; account_id: string }>(
				`SELECT w.job_id, w.account_id FROM waiting w ${FAIR_ORDER} LIMIT 1`,
			);
			if (!next) break;
			granted = true;
			this.#sql.run("DELETE FROM waiting WHERE job_id = ?", next.job_id);
			this.#sql.run(
				"INSERT OR REPLACE INTO slot (job_id, account_id, at) VALUES (?, ?, ?)",
				next.job_id,
				next.account_id,
				now,
			);
			this.#sql.run("INSERT OR REPLACE INTO served (account_id, at) VALUES (?, ?)", next.account_id, now);
			if (next.job_id !== caller) this.#poke(next.job_id);
		}
		// Everyone still waiting moved up: the nearest to a slot learn their new place now rather than at their next
		// check (up to ADMISSION_RECHECK_MS later); the rest at that check.
		if (!granted) return;
		const nearest = this.#sql.all<{ job_id: string }>(
			`SELECT w.job_id FROM waiting w ${FAIR_ORDER} LIMIT ?`,
			REFRESH_ON_GRANT,
		);
		for (const { job_id } of nearest) if (job_id !== caller) this.#poke(job_id);
	}

	/** Wakes a job to take its step now (a grant, or a new place in the queue); a lost poke costs one recheck. */
	#poke(jobId: string): void {
		this.ctx.waitUntil(
			this.env.JOBS.getByName(jobId)
				.poke()
				.catch(() => false),
		);
	}

	/** A waiting job's 1-based place in the fair order (0: it does not wait), counted in SQLite. */
	#position(jobId: string): number {
		const row = this.#sql.first<{ ahead: number }>(FAIR_AHEAD, jobId);
		return row ? row.ahead + 1 : 0;
	}

	#holds(jobId: string): boolean {
		return this.#sql.first("SELECT 1 AS held FROM slot WHERE job_id = ?", jobId) !== undefined;
	}

	#count(table: "slot" | "waiting"): number {
		return this.#sql.one<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`).n;
	}

	#breaker(): Breaker {
		const raw = this.#sql.meta(BACKEND_META.breaker);
		return raw ? (JSON.parse(raw) as Breaker) : closedBreaker();
	}

	#saveBreaker(b: Breaker): void {
		this.#sql.setMeta(BACKEND_META.breaker, JSON.stringify(b));
	}
}
