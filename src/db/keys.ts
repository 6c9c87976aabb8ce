import { ALL_SCOPES, type Scope } from "../schemas/keys";
import { all, first, run } from "./sql";

export interface ApiKeyRow {
	id: string;
	account_id: string;
	name: string;
	prefix: string;
	key_hash: string;
	scopes: string;
	created_at: string;
	last_used_at: string | null;
	revoked_at: string | null;
}

export async function ensureAccount(db: D1Database, accountId: string, now: string): Promise<void> {
	await run(db, "INSERT INTO accounts (id, created_at) VALUES (?, ?) ON CONFLICT(id) DO NOTHING", accountId, now);
}

export async function insertKey(
	db: D1Database,
	row: { id: string; accountId: string; name: string; prefix: string; keyHash: string; scopes: Scope[]; now: string },
): Promise<void> {
	await run(
		db,
		"INSERT INTO api_keys (id, account_id, name, prefix, key_hash, scopes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
		row.id,
		row.accountId,
		row.name,
		row.prefix,
		row.keyHash,
		JSON.stringify(row.scopes),
		row.now,
	);
}

export function findKeyByHash(db: D1Database, keyHash: string): Promise<ApiKeyRow | null> {
	return first<ApiKeyRow>(db, "SELECT * FROM api_keys WHERE key_hash = ?", keyHash);
}

export function findKeyById(db: D1Database, id: string): Promise<ApiKeyRow | null> {
	return first<ApiKeyRow>(db, "SELECT * FROM api_keys WHERE id = ?", id);
}

/** The hashes of an account's live keys: the names of their gate objects. */
export async function activeKeyHashes(db: D1Database, accountId: string): Promise<string[]> {
	const rows = await all<{ key_hash: string }>(
		db,
		"SELECT key_hash FROM api_keys WHERE account_id = ? AND revoked_at IS NULL",
		accountId,
	);
	return rows.map((r) => r.key_hash);
}

export function listKeys(db: D1Database): Promise<ApiKeyRow[]> {
	return all<ApiKeyRow>(db, "SELECT * FROM api_keys ORDER BY created_at DESC, id DESC LIMIT 1000");
}

export async function revokeKey(db: D1Database, id: string, now: string): Promise<ApiKeyRow | null> {
	await run(db, "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", now, id);
	return first<ApiKeyRow>(db, "SELECT * FROM api_keys WHERE id = ?", id);
}

/** Whether the key still exists and is not revoked. */
export async function isKeyActive(db: D1Database, id: string): Promise<boolean> {
	const row = await findKeyById(db, id);
	return row !== null && row.revoked_at === null;
}

/** `last_used_at` is written at most this often per key. */
export const TOUCH_INTERVAL_MS = 60_000;

/** Writes `last_used_at` only when the stored one is older than a minute, so busy keys cost no extra writes. */
export async function touchKey(db: D1Database, id: string, now: string, cutoff: string): Promise<void> {
	await run(
		db,
		"UPDATE api_keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
		now,
		id,
		cutoff,
	);
}

export function parseScopes(json: string): Scope[] {
	const parsed: unknown = JSON.parse(json);
	return Array.isArray(parsed) ? (parsed.filter((s) => ALL_SCOPES.includes(s)) as Scope[]) : [];
}
