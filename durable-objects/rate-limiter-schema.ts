/**
 * Everything the RateLimiterDO stores (one object per API key hash). Unlike the other objects it has no `meta`
 * table and no version row: an object made for a key that does not exist (a guessed one) must store nothing, and
 * the idle cleanup deletes its storage again, so each table is created when first written and its existence is
 * state in itself. A change to either table's shape must therefore be read from the table itself (as
 * backend-schema.ts adopts its unversioned `meta`). docs/storage.md describes them.
 */

/**
 * `bucket`: one row per token bucket (`requests`, `jobs`): its `tokens` (fractional while refilling) as of
 * `updated_ms` (epoch ms). Created by the first charge, dropped by the idle cleanup.
 */
export const BUCKET_DDL =
	"CREATE TABLE IF NOT EXISTS bucket (name TEXT PRIMARY KEY, tokens REAL NOT NULL, updated_ms INTEGER NOT NULL)";

/** `revoked`: one row once the key is revoked (its existence is the mark), written before D1 is. */
export const REVOKED_DDL = "CREATE TABLE IF NOT EXISTS revoked (at TEXT NOT NULL)";
