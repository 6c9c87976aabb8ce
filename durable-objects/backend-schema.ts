/**
 * Everything the BackendDO stores (one object per backend name): its tables, the schema version and its
 * migrations, and the keys of `meta`. docs/storage.md describes them.
 */
import { type ObjectSchema, ObjectSql } from "./sql";

/** The keys of `meta`, besides the schema version. */
export const BACKEND_META = {
	/** The backend's name, as the last caller gave it (a holder whose job names another backend has moved). */
	name: "name",
	/** Its `max_concurrency`, as the last `acquire` gave it: what a release or the alarm may grant up to. */
	max: "max",
	/** The circuit breaker (src/backends/breaker.ts), JSON; absent: closed. */
	breaker: "breaker",
	/** A vastai backend's instance (src/backends/vastai-fleet.ts `VastState`), JSON; `null` once it had one. */
	vast: "vast",
	/**
	 * Why a vastai backend's jobs wait (src/backends/vastai-fleet.ts `VastWaitNote`), JSON: the last not-ready answer and since when
	 * no offer has matched. Absent once an instance is ready.
	 */
	vastWait: "vast_wait",
	/** A vastai backend being deleted (`VastDeleting`), JSON: kept until vast.ai confirms every destroy. */
	vastDeleting: "vast_deleting",
} as const;

/**
 * - v1 `slot`: the jobs holding a slot, with their account and when they got it. `waiting`: the jobs queued for
 *   one, in arrival order. `served`: when each account was last granted a slot (the fair queue's round robin).
 * - v2 `waiting.priority`: the job's priority rank (0 low, 1 normal, 2 high), which orders an account's own jobs.
 * - v3 `runs`: the newest completed runs (model, work in frames × megapixels, execution and queue delay in ms),
 *   what the ETAs of src/jobs/eta.ts are fit from.
 * - v4 indexes on the account of `waiting` (with `seq`) and of `slot`: the fair order asks, per waiting job, for its
 *   account's oldest request and slots held, which without them scanned the whole table for every row.
 */
export const BACKEND_SCHEMA: ObjectSchema = {
	version: 4,
	migrations: {
		1: [
			"CREATE TABLE IF NOT EXISTS slot (job_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, at INTEGER NOT NULL)",
			`CREATE TABLE IF NOT EXISTS waiting (seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT UNIQUE NOT NULL,
				account_id TEXT NOT NULL, at INTEGER NOT NULL)`,
			"CREATE TABLE IF NOT EXISTS served (account_id TEXT PRIMARY KEY, at INTEGER NOT NULL)",
		],
		2: ["ALTER TABLE waiting ADD COLUMN priority INTEGER NOT NULL DEFAULT 1"],
		3: [
			`CREATE TABLE IF NOT EXISTS runs (seq INTEGER PRIMARY KEY AUTOINCREMENT, model TEXT NOT NULL,
				units REAL NOT NULL, exec_ms INTEGER NOT NULL, delay_ms INTEGER, at INTEGER NOT NULL)`,
		],
		4: [
			"CREATE INDEX IF NOT EXISTS waiting_account ON waiting(account_id, seq)",
			"CREATE INDEX IF NOT EXISTS slot_account ON slot(account_id)",
		],
	},
};

/**
 * Objects from before the schema had a version keep `meta` as `(k, v)`: renamed to the `(key, value)` every object
 * shares before the version is read from it. Their other tables already match v1.
 */
function adoptUnversioned(sql: ObjectSql): void {
	const meta = sql.first<{ sql: string }>("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'meta'");
	if (!meta || !/\(\s*k\s+TEXT/i.test(meta.sql)) return;
	sql.run("ALTER TABLE meta RENAME COLUMN k TO key");
	sql.run("ALTER TABLE meta RENAME COLUMN v TO value");
}

/** The backend object's SQLite, its schema brought up to date. */
export function openBackendSql(storage: SqlStorage): ObjectSql {
	const sql = new ObjectSql(storage);
	adoptUnversioned(sql);
	sql.migrate(BACKEND_SCHEMA);
	return sql;
}
