/**
 * Everything the JobDO stores (one job per object), in one place: every table, the schema version and its
 * migrations, and the keys of `meta`. The store (store.ts), the event log (events.ts) and the webhook outbox
 * (outbox.ts) all reach SQLite through the one `ObjectSql` this module opens. docs/storage.md describes the tables.
 */
import { DELIVERY_STATUSES, JOB_EVENT_TYPES, JOB_STATUSES } from "../../src/schemas/jobs";
import { type ObjectSchema, ObjectSql, sqlList } from "../sql";

/** The keys of `meta`, besides the schema version. */
export const JOB_META = {
	/** "1" once a webhook receiver answered 410: the job's endpoint is off. */
	webhookDisabled: "webhook_disabled",
	/** When the last `job.progress` webhook was queued (epoch ms), for its throttle. */
	webhookLastProgressAt: "webhook_last_progress_at",
	/** When a failed D1 index write is tried again (epoch ms); cleared once the index has the job. */
	indexRetryAt: "index_retry_at",
} as const;

/** `job` as v1 created it, up to its closing parenthesis. */
const JOB_TABLE_V1 = `job (
	id TEXT PRIMARY KEY,
	status TEXT NOT NULL CHECK (status IN (${sqlList(JOB_STATUSES)})),
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
	updated_at TEXT NOT NULL`;

/** The `job` columns added after v1, by the version that added them. */
const JOB_COLUMNS_ADDED: Readonly<Record<number, readonly string[]>> = {
	3: ["output_upload_id TEXT"],
	4: ["output_key TEXT"],
	5: ["queue TEXT"],
	6: ["estimate TEXT", "eta TEXT"],
};

const HISTORY_TABLE = `CREATE TABLE IF NOT EXISTS history (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	at TEXT NOT NULL,
	status TEXT NOT NULL CHECK (status IN (${sqlList(JOB_STATUSES)})),
	event TEXT NOT NULL,
	detail TEXT
)`;

/** The event log as v8 left it, under `name`. */
const eventsTable = (name: string) => `CREATE TABLE ${name} (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	type TEXT NOT NULL CHECK (type IN ('status', 'progress', 'log')),
	at TEXT NOT NULL,
	data TEXT NOT NULL
)`;

const WEBHOOK_DELIVERIES_TABLE = [
	`CREATE TABLE IF NOT EXISTS webhook_deliveries (
	n INTEGER PRIMARY KEY AUTOINCREMENT,
	id TEXT NOT NULL UNIQUE,
	type TEXT NOT NULL,
	body TEXT NOT NULL,
	status TEXT NOT NULL CHECK (status IN (${sqlList(DELIVERY_STATUSES)})),
	attempts INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER,
	last_status_code INTEGER,
	last_error TEXT,
	created_at TEXT NOT NULL
)`,
	"CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at)",
];

const WORKER_LOGS_TABLE = `CREATE TABLE IF NOT EXISTS worker_logs (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,
	entry TEXT NOT NULL UNIQUE)`;

/**
 * - v1 `job`: the single job row. `spec` is JSON fixed at creation (routing may rewrite it on failover); the
 *   state machine's fields are columns, with `progress`, `error`, `output`, `cost` as JSON. `next_at` is when the
 *   job's next step is due (epoch ms) and `deadline_at` when it times out, so a restarted object resumes exactly.
 *   `index_synced` is 0 until the D1 index has seen the latest write.
 *   `history`: one row per saved change (status and event name), oldest first.
 * - v2 `events`: the SSE event log; `webhook_deliveries`: the webhook outbox.
 * - v3 `job.output_upload_id`: the R2 multipart upload the GPU worker may write the video through; null when none
 *   is open.
 * - v4 `job.output_key`: the R2 key the latest submission writes its video to (one per submission); null for jobs
 *   submitted before v4, which use the per-job key.
 * - v5 `job.queue`: why a waiting job waits and its place (src/jobs/queue.ts `JobQueue`, JSON); null while it runs
 *   or once it ended, and for jobs stored before v5 until their next step.
 * - v6 `job.estimate`: what the backend's measurements said about the job at its last admission check, and
 *   `job.eta`: when it should start and finish as of its last step (src/jobs/eta.ts, JSON); null once terminal.
 * - v7 `worker_logs`: the GPU worker's lines about the job, cleaned, each stored once (logs.ts).
 * - v8 `events` rebuilt so its `type` may also be `log` (SQLite cannot change a CHECK in place); the rows and their
 *   sequence numbers are kept.
 */
export const JOB_SCHEMA: ObjectSchema = {
	version: 8,
	migrations: {
		1: [`CREATE TABLE IF NOT EXISTS ${JOB_TABLE_V1}\n)`, HISTORY_TABLE],
		2: [
			`CREATE TABLE IF NOT EXISTS events (
				seq INTEGER PRIMARY KEY AUTOINCREMENT,
				type TEXT NOT NULL CHECK (type IN (${sqlList(JOB_EVENT_TYPES)})),
				at TEXT NOT NULL,
				data TEXT NOT NULL
			)`,
			...WEBHOOK_DELIVERIES_TABLE,
		],
		...Object.fromEntries(
			Object.entries(JOB_COLUMNS_ADDED).map(([v, columns]) => [
				v,
				columns.map((c) => `ALTER TABLE job ADD COLUMN ${c}`),
			]),
		),
		7: [WORKER_LOGS_TABLE],
		8: [
			eventsTable("events_v8"),
			"INSERT INTO events_v8 (seq, type, at, data) SELECT seq, type, at, data FROM events",
			"DROP TABLE events",
			"ALTER TABLE events_v8 RENAME TO events",
		],
	},
	// A new job object (every job's creation) gets v8 in one go instead of replaying eight versions of schema
	// changes; test/integration/object-schemas.test.ts checks that both paths end at the same tables.
	current: [
		`CREATE TABLE ${JOB_TABLE_V1},\n\t${Object.values(JOB_COLUMNS_ADDED).flat().join(",\n\t")}\n)`,
		HISTORY_TABLE,
		eventsTable("events"),
		...WEBHOOK_DELIVERIES_TABLE,
		WORKER_LOGS_TABLE,
	],
};

/** The job object's SQLite, its schema brought up to date. */
export function openJobSql(storage: SqlStorage): ObjectSql {
	const sql = new ObjectSql(storage);
	sql.migrate(JOB_SCHEMA);
	return sql;
}
