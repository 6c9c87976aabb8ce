/**
 * The Durable Objects' storage: each object's schema module creates every table behind one stored version, and a
 * backend object stored before its schema had a version is adopted without losing what it held.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { BACKEND_SCHEMA, openBackendSql } from "../../durable-objects/backend-schema";
import { JOB_SCHEMA, openJobSql } from "../../durable-objects/job/schema";
import { ObjectSql } from "../../durable-objects/sql";

const tables = (sql: SqlStorage) =>
	sql
		.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
		.toArray()
		.map((t) => t.name)
		.sort();

/**
 * Every table and index of an object, as SQLite keeps it: the statement text with its layout and quoting
 * normalised (an `ALTER TABLE … ADD COLUMN` or `RENAME` rewrites it), and each table's columns.
 */
const shape = (sql: SqlStorage) =>
	sql
		.exec<{ type: string; name: string; sql: string }>(
			`SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite%' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'
			 ORDER BY type, name`,
		)
		.toArray()
		.map((o) => ({
			type: o.type,
			name: o.name,
			sql: o.sql
				.replaceAll('"', "")
				.replace(/ IF NOT EXISTS/i, "")
				.replace(/\s+/g, " ")
				.replace(/\s*([(),])\s*/g, "$1"),
			columns: sql.exec(`SELECT * FROM pragma_table_xinfo('${o.name}')`).toArray(),
		}));

const version = (sql: SqlStorage) =>
	sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = 'schema_version'").toArray()[0]?.value;

describe("the job object's schema", () => {
	it("creates every table behind the current version", async () => {
		const stub = env.JOBS.getByName(`job_schema${crypto.randomUUID().slice(0, 8)}`);
		expect(await stub.get()).toBeNull();
		const stored = await runInDurableObject(stub, (_instance, state) => ({
			tables: tables(state.storage.sql),
			version: version(state.storage.sql),
		}));
		expect(stored).toEqual({
			tables: ["events", "history", "job", "meta", "webhook_deliveries", "worker_logs"],
			version: String(JOB_SCHEMA.version),
		});
	});

	it("gives a new object the same tables, columns, checks and indexes as replaying every migration would", async () => {
		const created = env.JOBS.getByName(`job_schemanew${crypto.randomUUID().slice(0, 8)}`);
		expect(await created.get()).toBeNull();
		const fresh = await runInDurableObject(created, (_instance, state) => shape(state.storage.sql));
		// A key's gate stores nothing of its own until charged: an empty SQLite to replay the migrations in.
		const empty = env.RATE_LIMITER.getByName(`schema-replay-${crypto.randomUUID()}`);
		const replayed = await runInDurableObject(empty, (_instance, state) => {
			new ObjectSql(state.storage.sql).migrate({ version: JOB_SCHEMA.version, migrations: JOB_SCHEMA.migrations });
			return shape(state.storage.sql);
		});
		expect(fresh).toEqual(replayed);
		expect(fresh.map((t) => t.name)).toContain("job");
	});

	it("upgrades an object stored at an older version in one script, keeping its rows", async () => {
		const stub = env.JOBS.getByName(`job_schemaold${crypto.randomUUID().slice(0, 8)}`);
		const upgraded = await runInDurableObject(stub, (_instance, state) => {
			const sql = state.storage.sql;
			// An object as v2 left it: the v3 and v4 columns missing, a job row in place.
			for (const t of ["job", "history", "events", "webhook_deliveries"]) sql.exec(`DROP TABLE IF EXISTS ${t}`);
			for (const v of [1, 2]) for (const statement of JOB_SCHEMA.migrations[v] ?? []) sql.exec(statement);
			sql.exec("UPDATE meta SET value = '2' WHERE key = 'schema_version'");
			sql.exec(
				"INSERT INTO job (id, status, spec, progress, deadline_at, updated_at) VALUES ('j', 'queued', '{}', '{}', 1, 'x')",
			);
			openJobSql(sql);
			const columns = sql
				.exec<{ name: string }>("SELECT name FROM pragma_table_info('job')")
				.toArray()
				.map((c) => c.name);
			return { columns, rows: sql.exec("SELECT id FROM job").toArray().length, version: version(sql) };
		});
		expect(upgraded.columns).toEqual(expect.arrayContaining(["output_upload_id", "output_key"]));
		expect(upgraded).toMatchObject({ rows: 1, version: String(JOB_SCHEMA.version) });
	});
});

describe("the job object's event log", () => {
	it("takes `log` events once upgraded, keeping the events and the numbering it had", async () => {
		const stub = env.JOBS.getByName(`job_schema${crypto.randomUUID().slice(0, 8)}`);
		const after = await runInDurableObject(stub, (_instance, state) => {
			const sql = state.storage.sql;
			// The log as v7 stored it: `status` and `progress` only, numbering past a pruned start.
			sql.exec("DROP TABLE events");
			sql.exec(`CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT,
				type TEXT NOT NULL CHECK (type IN ('status', 'progress')), at TEXT NOT NULL, data TEXT NOT NULL)`);
			sql.exec("INSERT INTO events (seq, type, at, data) VALUES (41, 'status', '2026-01-01T00:00:00Z', '{}')");
			expect(() => sql.exec("INSERT INTO events (type, at, data) VALUES ('log', 'x', '{}')")).toThrow();
			sql.exec("UPDATE meta SET value = '7' WHERE key = 'schema_version'");
			const upgraded = openJobSql(sql);
			const { seq } = upgraded.one<{ seq: number }>(
				"INSERT INTO events (type, at, data) VALUES ('log', 'x', '{}') RETURNING seq",
			);
			return { seq, rows: upgraded.all<{ seq: number; type: string }>("SELECT seq, type FROM events ORDER BY seq") };
		});
		expect(after).toEqual({
			seq: 42,
			rows: [
				{ seq: 41, type: "status" },
				{ seq: 42, type: "log" },
			],
		});
	});
});

describe("the backend object's schema", () => {
	it("creates every table behind the current version", async () => {
		const stub = env.BACKENDS.getByName(`schema-${crypto.randomUUID()}`);
		expect((await stub.snapshot()).in_flight).toBe(0);
		const stored = await runInDurableObject(stub, (_instance, state) => ({
			tables: tables(state.storage.sql),
			version: version(state.storage.sql),
		}));
		expect(stored).toEqual({
			tables: ["meta", "runs", "served", "slot", "waiting"],
			version: String(BACKEND_SCHEMA.version),
		});
	});

	it("adopts an object stored before its schema had a version, keeping its meta values", async () => {
		const stub = env.BACKENDS.getByName(`schema-legacy-${crypto.randomUUID()}`);
		const adopted = await runInDurableObject(stub, (_instance, state) => {
			const sql = state.storage.sql;
			// The shape such objects have: `meta (k, v)` and no version row.
			sql.exec("DROP TABLE meta");
			sql.exec("CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)");
			sql.exec("INSERT INTO meta (k, v) VALUES ('name', 'legacy'), ('max', '3')");
			// ...and the queue table of then, without the later `priority` column.
			sql.exec("DROP TABLE waiting");
			sql.exec(`CREATE TABLE waiting (seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT UNIQUE NOT NULL,
				account_id TEXT NOT NULL, at INTEGER NOT NULL)`);
			const reopened = openBackendSql(sql);
			return { name: reopened.meta("name"), max: reopened.meta("max"), version: version(sql) };
		});
		expect(adopted).toEqual({ name: "legacy", max: "3", version: String(BACKEND_SCHEMA.version) });
	});
});
