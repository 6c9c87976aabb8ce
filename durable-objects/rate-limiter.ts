import { DurableObject } from "cloudflare:workers";
import type { BucketCharge, RateLimitDecision } from "../src/limits/rate-limit";
import { WINDOW_S } from "../src/limits/rate-limit";
import { type BucketState, takeAll } from "../src/limits/token-bucket";

/**
 * The token buckets of one API key (one object per key id). A Durable Object runs one call at a time, and `take`
 * does no I/O between reading and writing the buckets, so concurrent requests are counted exactly. The buckets
 * live in memory and every charge is written through to SQLite, so an evicted or restarted object resumes with the
 * same tokens instead of a fresh burst.
 *
 * Table `bucket`: one row per bucket name; `tokens` (fractional while refilling) as of `updated_ms` (epoch ms).
 */
export class RateLimiterDO extends DurableObject<Env> {
	readonly #sql: SqlStorage;
	readonly #buckets = new Map<string, BucketState>();

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.#sql = ctx.storage.sql;
		this.#sql.exec(
			"CREATE TABLE IF NOT EXISTS bucket (name TEXT PRIMARY KEY, tokens REAL NOT NULL, updated_ms INTEGER NOT NULL)",
		);
		for (const row of this.#sql.exec<{ name: string; tokens: number; updated_ms: number }>(
			"SELECT name, tokens, updated_ms FROM bucket",
		)) {
			this.#buckets.set(row.name, { tokens: row.tokens, updatedMs: row.updated_ms });
		}
	}

	/**
	 * Takes one token from each named bucket, or none when any of them is empty. The quotas come with every call
	 * (the account's current limits), so a changed limit applies on the next request.
	 */
	async take(charges: BucketCharge[]): Promise<RateLimitDecision> {
		const result = takeAll(
			charges.map((c) => ({
				name: c.name,
				policy: { quota: Math.max(1, Math.floor(c.quota)), windowMs: WINDOW_S * 1000 },
				state: this.#buckets.get(c.name) ?? null,
			})),
			Date.now(),
		);
		for (const b of result.buckets) {
			this.#buckets.set(b.name, b.next);
			// A refusal changes nothing that refilling the stored state would not recompute: only charges are written.
			if (result.allowed) {
				this.#sql.exec(
					`INSERT INTO bucket (name, tokens, updated_ms) VALUES (?, ?, ?)
					 ON CONFLICT(name) DO UPDATE SET tokens = excluded.tokens, updated_ms = excluded.updated_ms`,
					b.name,
					b.next.tokens,
					b.next.updatedMs,
				);
			}
		}
		return {
			allowed: result.allowed,
			buckets: result.buckets.map((b) => ({
				name: b.name,
				quota: b.report.quota,
				remaining: b.report.remaining,
				reset_s: Math.ceil(b.report.resetMs / 1000),
			})),
			retry_after_s: result.allowed ? 0 : Math.max(1, Math.ceil(result.retryAfterMs / 1000)),
			limited_by: result.refused.map((b) => b.name),
		};
	}
}
