import type { Estimate, Eta } from "../../src/jobs/eta";
import type { JobQueue } from "../../src/jobs/queue";
import type { JobRecord, JobSpec, WebhookDeliveryView } from "../../src/jobs/record";
import { isTerminal, type JobState, TERMINAL_STATUSES } from "../../src/jobs/state";
import { type ObjectSql, sqlList } from "../sql";
import { JOB_META } from "./schema";

/**
 * The job's record in the object's SQLite: the `job` row and its `history` (tables in schema.ts). Every write of
 * the job goes through here, and each `save` tells the notifier in the same synchronous step, so a change and the
 * events and webhook rows it causes are stored together.
 */

interface JobRow extends Record<string, SqlStorageValue> {
	id: string;
	status: JobState["status"];
	spec: string;
	attempts: number;
	remote_id: string | null;
	started_at: string | null;
	completed_at: string | null;
	progress: string;
	error: string | null;
	output: string | null;
	cost: string | null;
	transient_failures: number;
	next_at: number | null;
	deadline_at: number;
	index_synced: number;
	updated_at: string;
	output_upload_id: string | null;
	output_key: string | null;
	queue: string | null;
	estimate: string | null;
	eta: string | null;
}

const json = <T>(s: string | null): T | null => (s === null ? null : (JSON.parse(s) as T));

/** Only a waiting job has a place in a queue: a running or finished one stores none. */
const queueValue = (job: StoredJob): string | null =>
	job.status === "queued" && job.queue ? JSON.stringify(job.queue) : null;

/** The stored record plus the storage-only fields. */
export interface StoredJob extends JobRecord {
	deadline_at: number;
	index_synced: boolean;
	/** The open output multipart upload (v3), written only by `setOutputUpload`; absent reads as none. */
	output_upload_id?: string | null;
}

/**
 * What the store tells its owner about writes (the JobDO's notifier): called inside `insert` and `save`, so the
 * events and webhook rows a change causes are written in the same storage transaction as the change.
 */
export interface JobStoreHooks {
	saved(prev: StoredJob | null, next: StoredJob): void;
	/** The webhook deliveries to attach to a loaded job that has a webhook. */
	deliveries(): WebhookDeliveryView[];
}

export class JobStore {
	readonly #sql: ObjectSql;
	readonly #hooks?: JobStoreHooks;
	/**
	 * The row as last read, parsed, so a job polled many times between changes is parsed once (undefined: read it
	 * again). Every write of the row goes through `#writeJob`, which drops it; nothing else writes the row.
	 */
	#parsed: StoredJob | null | undefined;

	constructor(sql: ObjectSql, hooks?: JobStoreHooks) {
		this.#sql = sql;
		this.#hooks = hooks;
	}

	/** The job (with its webhook deliveries when it has a webhook), or null before `insert`. */
	load(): StoredJob | null {
		const stored = this.#read();
		if (!stored) return null;
		// A copy: the steps set fields on what they load, and the parsed row must stay as stored.
		const job = { ...stored };
		if (this.#hooks && job.spec.webhook) job.deliveries = this.#hooks.deliveries();
		return job;
	}

	insert(job: StoredJob): void {
		this.#writeJob(
			`INSERT INTO job (id, status, spec, attempts, remote_id, started_at, completed_at, progress, error, output,
			   cost, transient_failures, next_at, deadline_at, index_synced, updated_at, queue, estimate, eta)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)`,
			job.spec.id,
			job.status,
			JSON.stringify(job.spec),
			...this.#stateValues(job),
			job.deadline_at,
			job.updated_at,
			queueValue(job),
			...this.#etaValues(job),
		);
		this.#history(job, "created");
		this.#hooks?.saved(null, job);
	}

	/**
	 * Writes the job (its spec, which failover rewrites, and the mutable fields) and appends `event` to the history
	 * (except `polled`: a poll that changed nothing but the next step); marks the index stale.
	 *
	 * A job that is already terminal is never overwritten: the write is refused (false). This is what keeps a
	 * step that was waiting on a backend from undoing a cancel that landed meanwhile, so the steps work on the job
	 * as they loaded it instead of reloading it after every await.
	 */
	save(job: StoredJob, event: string, detail?: string): boolean {
		const prev = this.#read();
		if (!prev || isTerminal(prev.status)) return false;
		this.#writeJob(
			`UPDATE job SET spec = ?, status = ?, attempts = ?, remote_id = ?, started_at = ?, completed_at = ?,
			   progress = ?, error = ?, output = ?, cost = ?, transient_failures = ?, next_at = ?, index_synced = 0,
			   updated_at = ?, queue = ?, estimate = ?, eta = ?`,
			JSON.stringify(job.spec),
			job.status,
			...this.#stateValues(job),
			job.updated_at,
			queueValue(job),
			...this.#etaValues(job),
		);
		if (event !== "polled") this.#history(job, event, detail);
		this.#hooks?.saved(prev, job);
		return true;
	}

	/**
	 * When the object must wake next (epoch ms), or null when nothing is due: the job's next step while it is not
	 * terminal (already capped at its deadline), the earliest pending webhook attempt, and a deferred retry of the
	 * D1 index write while the index is behind.
	 */
	nextWakeAt(): number | null {
		return this.#sql.one<{ due: number | null }>(
			`SELECT MIN(due) AS due FROM (
			   SELECT next_at AS due FROM job WHERE status NOT IN (${sqlList(TERMINAL_STATUSES)})
			   UNION ALL SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE status = 'pending'
			   UNION ALL SELECT CAST(value AS INTEGER) FROM meta
			     WHERE key = ? AND EXISTS (SELECT 1 FROM job WHERE index_synced = 0)
			 )`,
			JOB_META.indexRetryAt,
		).due;
	}

	/**
	 * After steps that kept failing: nothing is tried again before `at`, except that a live job still times out at
	 * its deadline.
	 */
	postpone(at: number, now: number): void {
		this.#writeJob(
			`UPDATE job SET next_at = MIN(?, MAX(deadline_at, ?)) WHERE status NOT IN (${sqlList(TERMINAL_STATUSES)})`,
			at,
			now,
		);
		this.deferIndexSync(at);
	}

	/** The D1 index write failed: try it again at `at` (it also goes with the job's next step, when sooner). */
	deferIndexSync(at: number): void {
		this.#sql.setMeta(JOB_META.indexRetryAt, String(at));
	}

	/** Records the key the next submission writes its video to. */
	setOutputKey(key: string): void {
		this.#writeJob("UPDATE job SET output_key = ?", key);
	}

	/** Records (or, with null, forgets) the job's open output multipart upload. */
	setOutputUpload(uploadId: string | null): void {
		this.#writeJob("UPDATE job SET output_upload_id = ?", uploadId);
	}

	/** The D1 index has the job as of `updatedAt`. */
	markIndexSynced(updatedAt: string): void {
		// Only if nothing was written since the snapshot that was mirrored.
		this.#writeJob("UPDATE job SET index_synced = 1 WHERE updated_at = ?", updatedAt);
		this.#sql.deleteMeta(JOB_META.indexRetryAt);
	}

	/** The change history, oldest first (for tests and debugging: the job JSON does not carry it). */
	history(): { at: string; status: string; event: string; detail: string | null }[] {
		return this.#sql.all<{ at: string; status: string; event: string; detail: string | null }>(
			"SELECT at, status, event, detail FROM history ORDER BY seq",
		);
	}

	/** Every write of the `job` row goes through here, which drops the parsed copy. */
	#writeJob(query: string, ...params: SqlStorageValue[]): void {
		this.#parsed = undefined;
		this.#sql.run(query, ...params);
	}

	#read(): StoredJob | null {
		if (this.#parsed === undefined) this.#parsed = this.#parse();
		return this.#parsed;
	}

	#parse(): StoredJob | null {
		const row = this.#sql.first<JobRow>("SELECT * FROM job LIMIT 1");
		if (!row) return null;
		return {
			spec: JSON.parse(row.spec) as JobSpec,
			status: row.status,
			attempts: row.attempts,
			remote_id: row.remote_id,
			started_at: row.started_at,
			completed_at: row.completed_at,
			progress: JSON.parse(row.progress) as JobState["progress"],
			error: json<JobState["error"]>(row.error),
			output: json<JobState["output"]>(row.output),
			cost: json<JobState["cost"]>(row.cost),
			transient_failures: row.transient_failures,
			next_at: row.next_at,
			deadline_at: row.deadline_at,
			index_synced: row.index_synced === 1,
			updated_at: row.updated_at,
			output_upload_id: row.output_upload_id ?? null,
			output_key: row.output_key ?? null,
			queue: json<JobQueue>(row.queue ?? null),
			estimate: json<Estimate>(row.estimate ?? null),
			eta: json<Eta>(row.eta ?? null),
		};
	}

	/** A finished job keeps neither: nothing about it is estimated any more. */
	#etaValues(job: StoredJob): SqlStorageValue[] {
		if (isTerminal(job.status)) return [null, null];
		return [job.estimate ? JSON.stringify(job.estimate) : null, job.eta ? JSON.stringify(job.eta) : null];
	}

	#stateValues(job: StoredJob): SqlStorageValue[] {
		return [
			job.attempts,
			job.remote_id,
			job.started_at,
			job.completed_at,
			JSON.stringify(job.progress),
			job.error ? JSON.stringify(job.error) : null,
			job.output ? JSON.stringify(job.output) : null,
			job.cost ? JSON.stringify(job.cost) : null,
			job.transient_failures,
			job.next_at,
		];
	}

	#history(job: StoredJob, event: string, detail?: string): void {
		this.#sql.run(
			"INSERT INTO history (at, status, event, detail) VALUES (?, ?, ?, ?)",
			job.updated_at,
			job.status,
			event,
			detail ?? null,
		);
	}
}
