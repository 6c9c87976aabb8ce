import { DurableObject } from "cloudflare:workers";
import { configOf } from "../src/config";
import { type ApiKeyWithLimits, findKeyWithLimits } from "../src/db/accounts";
import { TOUCH_INTERVAL_MS } from "../src/db/keys";
import { type Admission, judgeKey } from "../src/limits/admission";
import { chargesFor } from "../src/limits/charge";
import { tokensToLend } from "../src/limits/lease";
import type { BucketCharge, BucketName, RateLimitDecision } from "../src/limits/rate-limit";
import { WINDOW_S } from "../src/limits/rate-limit";
import { type BucketState, takeAll } from "../src/limits/token-bucket";
import type { Scope } from "../src/schemas/keys";
import { BUCKET_DDL, REVOKED_DDL } from "./rate-limiter-schema";
import { ObjectSql } from "./sql";

/** How long the object trusts its copy of the key's row; changes made through the API reach it at once (`forget`). */
const KEY_ROW_TTL_MS = 30_000;

/**
 * One API key's gate (one object per key hash): whether the key is valid, with which scopes and limits, and its
 * token buckets. Every key-authenticated request makes one call here (`admit`) instead of a D1 read plus a call:
 * the key's row is kept in memory, read from D1 when missing or older than KEY_ROW_TTL_MS, and dropped at once by
 * `forget` when the key is revoked or its account's limits change.
 *
 * A Durable Object runs one call at a time, and `take` does no I/O between reading and writing the buckets, so
 * concurrent requests are counted exactly. A charge to the `requests` bucket alone may take a few tokens more and
 * lend them to the asking isolate, which admits that many more requests itself (src/limits/lease.ts). The buckets live in memory and every charge is written through to
 * SQLite, so an evicted or restarted object resumes with the same tokens instead of a fresh burst.
 *
 * Its tables (`bucket`, `revoked`: rate-limiter-schema.ts) are created when first written; the revocation mark is
 * written before D1 is, so the refusal never waits on D1.
 *
 * A key that stops calling must not keep storage forever: a window after its last charge every bucket is full
 * again (the burst is the whole quota), exactly what a missing bucket means, so the alarm then deletes them.
 */
export class RateLimiterDO extends DurableObject<Env> {
	readonly #sql: ObjectSql;
	readonly #buckets = new Map<string, BucketState>();
	/** The key's row as last read from D1 (null: no such key), and when; undefined: not read yet. */
	#key: { row: ApiKeyWithLimits | null; readMs: number } | undefined;
	/** A read of the row in flight, shared by the calls that arrive meanwhile. */
	#reading: Promise<ApiKeyWithLimits | null> | null = null;
	#revoked: boolean;
	#touchedMs = 0;
	/** Whether an idle-cleanup alarm is known to be set (undefined: not read from storage yet). */
	#alarmSet: boolean | undefined;
	/** Whether the `bucket` table exists: created by the first charge, dropped by the idle cleanup. */
	#tableReady = false;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.#sql = new ObjectSql(ctx.storage.sql);
		// Read only: an object made for a key that does not exist (a guessed one) must leave nothing stored.
		this.#revoked = this.#sql.hasTable("revoked");
		this.#tableReady = this.#sql.hasTable("bucket");
		if (!this.#tableReady) return;
		for (const row of this.#sql.all<{ name: string; tokens: number; updated_ms: number }>(
			"SELECT name, tokens, updated_ms FROM bucket",
		)) {
			this.#buckets.set(row.name, { tokens: row.tokens, updatedMs: row.updated_ms });
		}
	}

	#createTable(): void {
		if (this.#tableReady) return;
		this.#tableReady = true;
		this.#sql.run(BUCKET_DDL);
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
		// A revoked key keeps its mark; anything else has nothing left worth keeping.
		if (this.#revoked) this.#sql.run("DROP TABLE IF EXISTS bucket");
		else await this.ctx.storage.deleteAll();
		this.#tableReady = false;
		this.#alarmSet = false;
	}

	/**
	 * Admits a request made with the key whose hash is `keyHash`: refused when the key is unknown or revoked, or
	 * lacks `scope`; else its buckets are charged (the `requests` bucket, and `jobs` when asked) with its account's
	 * current quotas. `touch` says when the key's `last_used_at` is due to be written again.
	 */
	async admit(
		keyHash: string,
		scope: Scope,
		buckets: BucketName[],
		options: { lease?: boolean } = {},
	): Promise<Admission> {
		if (this.#revoked) return { status: "invalid" };
		const row = await this.#row(keyHash);
		// Revoked while the row was being read: the mark wins over what D1 said.
		if (this.#revoked) return { status: "invalid" };
		const judged = judgeKey(row, scope, configOf(this.env).limits);
		if (judged.status !== "ok") return judged;
		const { decision, lent } = await this.#charge(chargesFor(judged.limits, buckets), options.lease === true);
		const now = Date.now();
		this.#touchedMs ||= Date.parse(row?.last_used_at ?? "") || 0;
		const touch = now - this.#touchedMs >= TOUCH_INTERVAL_MS;
		if (touch) this.#touchedMs = now;
		return { ...judged, decision, touch, ...(lent > 0 ? { lent } : {}) };
	}

	/**
	 * Drops the cached row, so the next request reads D1 again (the account's limits changed). With `revoked`, marks
	 * the key revoked first, durably: from this call on it is refused, whatever D1 says or is slow to say.
	 */
	async forget(options: { revoked?: boolean } = {}): Promise<void> {
		if (options.revoked && !this.#revoked) {
			// The table's existence is the mark (see the constructor); its row says when.
			this.#sql.run(REVOKED_DDL);
			this.#sql.run("INSERT INTO revoked (at) VALUES (?)", new Date().toISOString());
			this.#revoked = true;
		}
		this.#key = undefined;
		this.#reading = null;
	}

	async #row(keyHash: string): Promise<ApiKeyWithLimits | null> {
		if (this.#key && Date.now() - this.#key.readMs < KEY_ROW_TTL_MS) return this.#key.row;
		if (this.#reading) return this.#reading;
		const reading = findKeyWithLimits(this.env.DB, keyHash);
		this.#reading = reading;
		reading
			.then((row) => {
				// A `forget` while the read was in flight makes this read stale: keep it for its callers only.
				if (this.#reading === reading) this.#key = { row, readMs: Date.now() };
			})
			.catch(() => undefined)
			.finally(() => {
				if (this.#reading === reading) this.#reading = null;
			});
		return reading;
	}

	/**
	 * Takes one token from each named bucket, or none when any of them is empty. The quotas come with every call
	 * (the account's current limits), so a changed limit applies on the next request.
	 */
	async take(charges: BucketCharge[]): Promise<RateLimitDecision> {
		return (await this.#charge(charges, false)).decision;
	}

	/**
	 * `take`, and with `lease` (a charge to the `requests` bucket alone) also the tokens to lend the asking isolate
	 * (src/limits/lease.ts `tokensToLend`), taken from the bucket with the request's own.
	 */
	async #charge(charges: BucketCharge[], lease: boolean): Promise<{ decision: RateLimitDecision; lent: number }> {
		const now = Date.now();
		const buckets = charges.map((c) => ({
			name: c.name,
			policy: { quota: Math.max(1, Math.floor(c.quota)), windowMs: WINDOW_S * 1000 },
			state: this.#buckets.get(c.name) ?? null,
		}));
		const only = buckets.length === 1 && buckets[0]?.name === "requests" ? buckets[0] : undefined;
		const lent = lease && only ? tokensToLend(only.state, only.policy, now) : 0;
		const result = takeAll(
			buckets.map((b) => ({ ...b, cost: 1 + lent })),
			now,
		);
		for (const b of result.buckets) {
			this.#buckets.set(b.name, b.next);
			// A refusal changes nothing that refilling the stored state would not recompute: only charges are written.
			if (result.allowed) {
				this.#createTable();
				this.#sql.run(
					`INSERT INTO bucket (name, tokens, updated_ms) VALUES (?, ?, ?)
					 ON CONFLICT(name) DO UPDATE SET tokens = excluded.tokens, updated_ms = excluded.updated_ms`,
					b.name,
					b.next.tokens,
					b.next.updatedMs,
				);
			}
		}
		if (result.allowed) await this.#armCleanup(now);
		const decision: RateLimitDecision = {
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
		return { decision, lent: result.allowed ? lent : 0 };
	}
}
