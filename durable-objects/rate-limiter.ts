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
 *
 * A key that stops calling must not keep storage forever: a window after its last charge every bucket is full
 * again (the burst is the whole quota), exactly what a missing bucket means, so the alarm then deletes it all.
 */
export class RateLimiterDO extends DurableObject<Env> {
	readonly #sql: SqlStorage;
	readonly #buckets = new Map<string, BucketState>();
	/** Whether an idle-cleanup alarm is known to be set (undefined: not read from storage yet). */
	#alarmSet: boolean | undefined;
	/** False once the cleanup deleted the table: the next charge creates it again. */
	#tableReady = false;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.#sql = ctx.storage.sql;
		this.#createTable();
		for (const row of this.#sql.exec<{ name: string; tokens: number; updated_ms: number }>(
			"SELECT name, tokens, updated_ms FROM bucket",
		)) {
			this.#buckets.set(row.name, { tokens: row.tokens, updatedMs: row.updated_ms });
		}
	}

	#createTable(): void {
		if (this.#tableReady) return;
		this.#tableReady = true;
		this.#sql.exec(
			"CREATE TABLE IF NOT EXISTS bucket (name TEXT PRIMARY KEY, tokens REAL NOT NULL, updated_ms INTEGER NOT NULL)",
		);
	}

	/** Arms the idle cleanup once; the alarm itself moves it on while the key keeps calling. */
	async #armCleanup(lastChargeMs: number): Promise<void> {
		this.#alarmSet ??= (await this.ctx.storage.getAlarm()) !== null;
		if (this.#alarmSet) return;
		await this.ctx.storage.setAlarm(lastChargeMs + WINDOW_S * 1000);
		this.#alarmSet = true;
	}

	/** A window after the last charge every bucket is full again: forget them (storage included). */
	override async alarm(): Promise<void> {
		const lastChargeMs = Math.max(0, ...[...this.#buckets.values()].map((b) => b.updatedMs));
		const idleUntil = lastChargeMs + WINDOW_S * 1000;
		if (Date.now() < idleUntil) {
			await this.ctx.storage.setAlarm(idleUntil);
			this.#alarmSet = true;
			return;
		}
		this.#buckets.clear();
		await this.ctx.storage.deleteAll();
		this.#tableReady = false;
		this.#alarmSet = false;
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
				this.#createTable();
				this.#sql.exec(
					`INSERT INTO bucket (name, tokens, updated_ms) VALUES (?, ?, ?)
					 ON CONFLICT(name) DO UPDATE SET tokens = excluded.tokens, updated_ms = excluded.updated_ms`,
					b.name,
					b.next.tokens,
					b.next.updatedMs,
				);
			}
		}
		if (result.allowed) await this.#armCleanup(Date.now());
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
