import type { BackendKind } from "../schemas/backends";
import { all, first, run } from "./sql";

/** A row of `backends`. `config` is the non-secret JSON; `secrets` the sealed JSON of the secret fields. */
export interface BackendRow {
	name: string;
	kind: BackendKind;
	enabled: number;
	priority: number;
	models: string;
	max_concurrency: number;
	price_per_second_usd: number;
	config: string;
	secrets: string | null;
	last_health: string | null;
	created_at: string;
	updated_at: string;
}

export function getBackend(db: D1Database, name: string): Promise<BackendRow | null> {
	return first<BackendRow>(db, "SELECT * FROM backends WHERE name = ?", name);
}

export function listBackends(db: D1Database): Promise<BackendRow[]> {
	return all<BackendRow>(db, "SELECT * FROM backends ORDER BY priority DESC, name ASC");
}

/** Enabled backends, best first: the router filters them by model and kind. */
export function listEnabledBackends(db: D1Database): Promise<BackendRow[]> {
	return all<BackendRow>(db, "SELECT * FROM backends WHERE enabled = 1 ORDER BY priority DESC, name ASC");
}

/** Inserts or replaces a backend, keeping its `created_at` and `last_health`. */
export async function upsertBackend(
	db: D1Database,
	row: Omit<BackendRow, "last_health" | "created_at" | "updated_at">,
	now: string,
): Promise<BackendRow | null> {
	await run(
		db,
		`INSERT INTO backends (name, kind, enabled, priority, models, max_concurrency, price_per_second_usd, config, secrets,
		   created_at, updated_at)
		 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		 ON CONFLICT(name) DO UPDATE SET kind = excluded.kind, enabled = excluded.enabled, priority = excluded.priority,
		   models = excluded.models, max_concurrency = excluded.max_concurrency,
		   price_per_second_usd = excluded.price_per_second_usd, config = excluded.config, secrets = excluded.secrets,
		   updated_at = excluded.updated_at`,
		row.name,
		row.kind,
		row.enabled,
		row.priority,
		row.models,
		row.max_concurrency,
		row.price_per_second_usd,
		row.config,
		row.secrets,
		now,
		now,
	);
	return getBackend(db, row.name);
}

export async function deleteBackend(db: D1Database, name: string): Promise<boolean> {
	const res = await run(db, "DELETE FROM backends WHERE name = ?", name);
	return res.meta.changes > 0;
}

/** Turns a backend off for routing without touching its settings (a deletion waiting on its instances). */
export async function setBackendEnabled(db: D1Database, name: string, enabled: boolean, now: string): Promise<void> {
	await run(db, "UPDATE backends SET enabled = ?, updated_at = ? WHERE name = ?", enabled ? 1 : 0, now, name);
}

export async function setBackendHealth(db: D1Database, name: string, health: string): Promise<void> {
	await run(db, "UPDATE backends SET last_health = ? WHERE name = ?", health, name);
}
