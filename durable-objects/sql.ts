/**
 * The one path from a Durable Object's code to its SQLite: `?` placeholders, typed rows, the `meta` key/value
 * table, and a schema created or upgraded behind a stored version (the way cloudflare/agents keeps its schema:
 * https://github.com/cloudflare/agents/blob/main/packages/agents/src/index.ts). Each object's tables, version and
 * meta keys are declared in its schema module (durable-objects/job/schema.ts, backend-schema.ts,
 * rate-limiter-schema.ts); docs/storage.md describes them.
 */

export type SqlRow = Record<string, SqlStorageValue>;

/** An object's schema: the version its code expects and the statements that bring each version about. */
export interface ObjectSchema {
	version: number;
	/** Statements per version, run in order from the stored version + 1 up to `version`. */
	migrations: Readonly<Record<number, readonly string[]>>;
	/** The statements that create `version` at once, for an object that has no table yet (else the migrations). */
	current?: readonly string[];
}

/** The `meta` key that holds the schema version. */
const SCHEMA_VERSION_KEY = "schema_version";

const META_DDL = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)";

export class ObjectSql {
	readonly #storage: SqlStorage;

	constructor(storage: SqlStorage) {
		this.#storage = storage;
	}

	/** Every row of a query. */
	all<T extends SqlRow>(query: string, ...params: SqlStorageValue[]): T[] {
		return this.#storage.exec<T>(query, ...params).toArray();
	}

	/** The first row of a query, or undefined. */
	first<T extends SqlRow>(query: string, ...params: SqlStorageValue[]): T | undefined {
		return this.all<T>(query, ...params)[0];
	}

	/** The single row of a query; throws when there is not exactly one. */
	one<T extends SqlRow>(query: string, ...params: SqlStorageValue[]): T {
		return this.#storage.exec<T>(query, ...params).one();
	}

	/** A statement whose rows (if any) are not wanted. */
	run(query: string, ...params: SqlStorageValue[]): void {
		this.#storage.exec(query, ...params);
	}

	/** Whether a table exists (read only: creates nothing). */
	hasTable(name: string): boolean {
		return this.first("SELECT 1 AS yes FROM sqlite_master WHERE type = 'table' AND name = ?", name) !== undefined;
	}

	meta(key: string): string | null {
		return this.first<{ value: string }>("SELECT value FROM meta WHERE key = ?", key)?.value ?? null;
	}

	setMeta(key: string, value: string): void {
		this.run(
			"INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
			key,
			value,
		);
	}

	deleteMeta(key: string): void {
		this.run("DELETE FROM meta WHERE key = ?", key);
	}

	/**
	 * Creates or upgrades the schema behind the stored version; safe to run on every start. The pending versions'
	 * statements go to SQLite as one script and the version is written once: every object is new once (a job's
	 * creation pays for this), and statements run without an await between them commit together, so a failure
	 * leaves the stored version where it was.
	 */
	migrate(schema: ObjectSchema): void {
		this.run(META_DDL);
		const stored = Number(this.meta(SCHEMA_VERSION_KEY) ?? 0);
		if (stored >= schema.version) return;
		const statements: string[] = [];
		if (stored === 0 && schema.current && this.#onlyMeta()) statements.push(...schema.current);
		else for (let v = stored + 1; v <= schema.version; v++) statements.push(...(schema.migrations[v] ?? []));
		if (statements.length > 0) this.run(statements.join(";\n"));
		this.setMeta(SCHEMA_VERSION_KEY, String(schema.version));
	}

	/** Whether `meta` is the object's only table of its own (SQLite's and the platform's `_cf_` ones aside). */
	#onlyMeta(): boolean {
		return (
			this.first(
				`SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name != 'meta'
				 AND name NOT LIKE 'sqlite%' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'`,
			) === undefined
		);
	}
}

/** `'a', 'b'`: a TypeScript union's values for a `CHECK (column IN (…))`, so the two cannot drift. */
export function sqlList(values: readonly string[]): string {
	return values.map((v) => `'${v}'`).join(", ");
}
