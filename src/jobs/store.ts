import { EVENT_LOG_DDL } from "../../durable-objects/job-events";
import { OUTBOX_DDL } from "../../durable-objects/job-webhooks";
import type { JobRecord, JobSpec, WebhookDeliveryView } from "./record";
import { JOB_STATUSES, type JobState } from "./state";

/**
 * The JobDO's SQLite storage. Tables (one job per object):
 * - `meta(key, value)`: `schema_version`.
 * - `job`: the single job row. `spec` is JSON fixed at creation; the state machine's fields are columns, with
 *   `progress`, `error`, `output`, `cost` as JSON. `next_at` is the next alarm (epoch ms) and `deadline_at` the
 *   instant the job times out, so a restarted object resumes exactly. `index_synced` is 0 until the D1 index has
 *   seen the latest write.
 * - `history`: one row per saved change (status and event name), oldest first, for audit and the events stream.
 * - (v2) `events`: the SSE event log (durable-objects/job-events.ts); `webhook_deliveries`: the webhook outbox
 *   (durable-objects/job-webhooks.ts). `meta` also holds the outbox's `webhook_disabled` and throttle keys.
 * - (v3) `job.output_upload_id`: the R2 multipart upload the GPU worker may write the video through (signed
 *   with the job input, src/jobs/input.ts); null when none is open. Set apart from `save`: only the submit
 *   path opens one, and completion or abort clears it.
 * - (v4) `job.output_key`: the R2 key the latest submission writes its video to (one per submission, see
 *   `objectKeys.videoKey`); null for jobs submitted before v4, which use the per-job key.
 */
export const SCHEMA_VERSION = 4;

const STATUS_LIST = JOB_STATUSES.map((s) => `'${s}'`).join(", ");

const MIGRATIONS: Record<number, string[]> = {
	1: [
		`CREATE TABLE IF NOT EXISTS job (
			id TEXT PRIMARY KEY,
			status TEXT NOT NULL CHECK (status IN (${STATUS_LIST})),
			spec TEXT NOT NULL,
			attempts INTEGER NOT NULL DEFAULT 0,
			remote_id TEXT,
			started_at TEXT,
			completed_at TEXT,
			progress TEXT NOT NULL,
			error TEXT,
			output TEXT,
			cost TEXT,
			transient_failures INTEGER NOT NULL DEFAULT 0,
			next_at INTEGER,
			deadline_at INTEGER NOT NULL,
			index_synced INTEGER NOT NULL DEFAULT 0,
			updated_at TEXT NOT NULL
		)`,
		`CREATE TABLE IF NOT EXISTS history (
			seq INTEGER PRIMARY KEY AUTOINCREMENT,
			at TEXT NOT NULL,
			status TEXT NOT NULL CHECK (status IN (${STATUS_LIST})),
			event TEXT NOT NULL,
			detail TEXT
		)`,
	],
	2: [...EVENT_LOG_DDL, ...OUTBOX_DDL],
	3: ["ALTER TABLE job ADD COLUMN output_upload_id TEXT"],
	4: ["ALTER TABLE job ADD COLUMN output_key TEXT"],
};

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
	readonly #sql: SqlStorage;
	readonly #hooks?: JobStoreHooks;

	constructor(sql: SqlStorage, hooks?: JobStoreHooks) {
		this.#sql = sql;
		this.#hooks = hooks;
		this.#ensureSchema();
	}

	/** All SQL goes through here: one placeholder helper, typed rows. */
	#exec<T extends Record<string, SqlStorageValue>>(query: string, ...params: SqlStorageValue[]): T[] {
		return this.#sql.exec<T>(query, ...params).toArray();
	}

	/** Creates or upgrades the schema behind a stored version; safe to run on every start. */
	#ensureSchema(): void {
		this.#exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
		const row = this.#exec<{ value: string }>("SELECT value FROM meta WHERE key = 'schema_version'")[0];
		let version = row ? Number(row.value) : 0;
		while (version < SCHEMA_VERSION) {
			version++;
			for (const stmt of MIGRATIONS[version] ?? []) this.#exec(stmt);
			this.#exec(
				"INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
				String(version),
			);
		}
	}

	load(): StoredJob | null {
		const row = this.#exec<JobRow>("SELECT * FROM job LIMIT 1")[0];
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
		this.#exec(
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
		this.#exec(
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
		this.#exec("UPDATE job SET spec = ?", JSON.stringify(spec));
	}

	/** Records the key the next submission writes its video to. */
	setOutputKey(key: string): void {
		this.#exec("UPDATE job SET output_key = ?", key);
	}

	/** Records (or, with null, forgets) the job's open output multipart upload. */
	setOutputUpload(uploadId: string | null): void {
		this.#exec("UPDATE job SET output_upload_id = ?", uploadId);
	}

	markIndexSynced(updatedAt: string): void {
		// Only if nothing was written since the snapshot that was mirrored.
		this.#exec("UPDATE job SET index_synced = 1 WHERE updated_at = ?", updatedAt);
	}

	/** Test and debugging aid: the history, oldest first. */
	history(): { at: string; status: string; event: string; detail: string | null }[] {
		return this.#exec<{ at: string; status: string; event: string; detail: string | null }>(
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
		this.#exec(
			"INSERT INTO history (at, status, event, detail) VALUES (?, ?, ?, ?)",
			job.updated_at,
			job.status,
			event,
			detail ?? null,
		);
	}
}
