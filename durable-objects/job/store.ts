import type { JobRecord, JobSpec, WebhookDeliveryView } from "../../src/jobs/record";
import type { JobState } from "../../src/jobs/state";
import type { ObjectSql } from "../sql";

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
}

const json = <T>(s: string | null): T | null => (s === null ? null : (JSON.parse(s) as T));

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

	constructor(sql: ObjectSql, hooks?: JobStoreHooks) {
		this.#sql = sql;
		this.#hooks = hooks;
	}

	load(): StoredJob | null {
		const row = this.#sql.first<JobRow>("SELECT * FROM job LIMIT 1");
		if (!row) return null;
		const spec = JSON.parse(row.spec) as JobSpec;
		return {
			spec,
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
			...(this.#hooks && spec.webhook ? { deliveries: this.#hooks.deliveries() } : {}),
		};
	}

	insert(job: StoredJob): void {
		this.#sql.run(
			`INSERT INTO job (id, status, spec, attempts, remote_id, started_at, completed_at, progress, error, output,
			   cost, transient_failures, next_at, deadline_at, index_synced, updated_at)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)`,
			job.spec.id,
			job.status,
			JSON.stringify(job.spec),
			...this.#stateValues(job),
			job.deadline_at,
			job.updated_at,
		);
		this.#history(job, "created");
		this.#hooks?.saved(null, job);
	}

	/**
	 * Writes the mutable fields and appends `event` to the history (except `polled`: a poll that changed nothing
	 * but the next alarm); marks the index stale.
	 */
	save(job: StoredJob, event: string, detail?: string): void {
		const prev = this.#hooks ? this.load() : null;
		this.#sql.run(
			`UPDATE job SET status = ?, attempts = ?, remote_id = ?, started_at = ?, completed_at = ?, progress = ?,
			   error = ?, output = ?, cost = ?, transient_failures = ?, next_at = ?, index_synced = 0, updated_at = ?`,
			job.status,
			...this.#stateValues(job),
			job.updated_at,
		);
		if (event !== "polled") this.#history(job, event, detail);
		this.#hooks?.saved(prev, job);
	}

	/** Replaces the spec: only routing changes it after creation (failover to another backend). */
	updateSpec(spec: JobSpec): void {
		this.#sql.run("UPDATE job SET spec = ?", JSON.stringify(spec));
	}

	/** Records the key the next submission writes its video to. */
	setOutputKey(key: string): void {
		this.#sql.run("UPDATE job SET output_key = ?", key);
	}

	/** Records (or, with null, forgets) the job's open output multipart upload. */
	setOutputUpload(uploadId: string | null): void {
		this.#sql.run("UPDATE job SET output_upload_id = ?", uploadId);
	}

	markIndexSynced(updatedAt: string): void {
		// Only if nothing was written since the snapshot that was mirrored.
		this.#sql.run("UPDATE job SET index_synced = 1 WHERE updated_at = ?", updatedAt);
	}

	/** Test and debugging aid: the history, oldest first. */
	history(): { at: string; status: string; event: string; detail: string | null }[] {
		return this.#sql.all<{ at: string; status: string; event: string; detail: string | null }>(
			"SELECT at, status, event, detail FROM history ORDER BY seq",
		);
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
