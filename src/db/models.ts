import { all, first } from "./sql";

/** A row of `models`: the version of a model that jobs run now, or its retirement. */
export interface ModelHeadRow {
	id: string;
	version: string;
	retired_at: string | null;
	updated_at: string;
}

/** A row of `model_versions`: one registered manifest, never changed once written. */
export interface ModelVersionRow {
	id: string;
	version: string;
	manifest: string;
	digest: string;
	created_at: string;
}

/** Every model's head, with the manifest of its current version when that version was registered. */
export function listModelHeads(
	db: D1Database,
): Promise<(ModelHeadRow & { manifest: string | null; digest: string | null })[]> {
	return all(
		db,
		`SELECT m.id, m.version, m.retired_at, m.updated_at, v.manifest, v.digest
		   FROM models m LEFT JOIN model_versions v ON v.id = m.id AND v.version = m.version
		  ORDER BY m.id`,
	);
}

export function getModelVersion(db: D1Database, id: string, version: string): Promise<ModelVersionRow | null> {
	return first<ModelVersionRow>(db, "SELECT * FROM model_versions WHERE id = ? AND version = ?", id, version);
}

export function listModelVersions(db: D1Database, id: string): Promise<Omit<ModelVersionRow, "manifest">[]> {
	return all(
		db,
		"SELECT id, version, digest, created_at FROM model_versions WHERE id = ? ORDER BY created_at, version",
		id,
	);
}

/**
 * Stores a version (unless it is there already: versions never change) and makes it the model's current one, in
 * one batch. Returns whether the version was new.
 */
export async function putModelVersion(db: D1Database, row: ModelVersionRow, now: string): Promise<boolean> {
	const [inserted] = await db.batch([
		db
			.prepare(
				"INSERT INTO model_versions (id, version, manifest, digest, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id, version) DO NOTHING",
			)
			.bind(row.id, row.version, row.manifest, row.digest, now),
		db
			.prepare(
				`INSERT INTO models (id, version, retired_at, updated_at) VALUES (?, ?, NULL, ?)
				 ON CONFLICT (id) DO UPDATE SET version = excluded.version, retired_at = NULL, updated_at = excluded.updated_at`,
			)
			.bind(row.id, row.version, now),
	]);
	return (inserted?.meta.changes ?? 0) > 0;
}

/** Retires a model: its head keeps the version it had, marked retired. */
export async function retireModel(db: D1Database, id: string, version: string, now: string): Promise<void> {
	await db
		.prepare(
			`INSERT INTO models (id, version, retired_at, updated_at) VALUES (?, ?, ?, ?)
			 ON CONFLICT (id) DO UPDATE SET retired_at = excluded.retired_at, updated_at = excluded.updated_at`,
		)
		.bind(id, version, now, now)
		.run();
}
