import { configOf } from "../config";
import { type ApiKeyWithLimits, findKeyWithLimits } from "../db/accounts";
import { parseScopes, TOUCH_INTERVAL_MS } from "../db/keys";
import type { Logger } from "../lib/logger";
import type { Scope } from "../schemas/keys";
import { type DefaultLimits, type EffectiveLimits, effectiveLimits } from "./config";
import { LeaseBook } from "./lease";
import type { BucketName, RateLimitDecision } from "./rate-limit";

/** Who is calling: the key's id, its account and its scopes (set by the API-key middleware). */
export interface Caller {
	keyId: string;
	accountId: string;
	scopes: Scope[];
}

/** What the key's gate (durable-objects/rate-limiter.ts) says of a request. */
export type Admission =
	| { status: "invalid" }
	| { status: "forbidden"; scope: Scope }
	| {
			status: "ok";
			caller: Caller;
			limits: EffectiveLimits;
			/** null: the limiter could not be asked, and the request goes through unlimited. */
			decision: RateLimitDecision | null;
			/** Whether the key's `last_used_at` is due to be written. */
			touch: boolean;
			/** Tokens the gate took ahead and lent to the asking isolate (src/limits/lease.ts); absent: none. */
			lent?: number;
	  };

/** What a key's row says of a request needing `scope`, before any bucket is charged: the gate and the fallback's. */
export function judgeKey(
	row: ApiKeyWithLimits | null,
	scope: Scope,
	defaults: DefaultLimits,
): Exclude<Admission, { status: "ok" }> | { status: "ok"; caller: Caller; limits: EffectiveLimits } {
	if (!row || row.revoked_at) return { status: "invalid" };
	const scopes = parseScopes(row.scopes);
	if (!scopes.includes(scope)) return { status: "forbidden", scope };
	return {
		status: "ok",
		caller: { keyId: row.id, accountId: row.account_id, scopes },
		limits: effectiveLimits(row, defaults),
	};
}

/** This isolate's tokens lent by the keys' gates. */
const leases = new LeaseBook();

/**
 * Admits a request by its key's hash: one call to the key's gate object, or none when the request is charged to
 * the `requests` bucket alone and this isolate holds tokens the gate lent it (src/limits/lease.ts). When that
 * object cannot be reached, the key is checked in D1 instead and the request goes through without a rate limit
 * (logged as `rate_limiter_unavailable`): an outage of the limiter must not take the whole API down with it.
 */
export async function admitKey(
	env: Env,
	keyHash: string,
	scope: Scope,
	buckets: BucketName[],
	log: Logger,
): Promise<Admission> {
	try {
		const gate = env.RATE_LIMITER.getByName(keyHash);
		if (buckets.length === 1 && buckets[0] === "requests") {
			return await leases.admit(keyHash, scope, (lease) => gate.admit(keyHash, scope, buckets, { lease }));
		}
		return await gate.admit(keyHash, scope, buckets);
	} catch (err) {
		log.error("rate_limiter_unavailable", { error: err instanceof Error ? err.message : String(err) });
	}
	const row = await findKeyWithLimits(env.DB, keyHash);
	const judged = judgeKey(row, scope, configOf(env).limits);
	if (judged.status !== "ok") return judged;
	const lastUsed = row?.last_used_at;
	return {
		...judged,
		decision: null,
		touch: !lastUsed || Date.parse(lastUsed) < Date.now() - TOUCH_INTERVAL_MS,
	};
}

/**
 * Tells the gates of these keys that what D1 holds for them changed: with `revoked`, the key is refused from now on
 * (call it before writing D1, so the refusal never waits on D1); without, the next request reads D1 again (the
 * account's limits changed). This isolate drops the keys' leases at once; another spends what it holds for at
 * most LEASE_MS (src/limits/lease.ts).
 */
export async function forgetKeys(env: Env, keyHashes: string[], options: { revoked?: boolean } = {}): Promise<void> {
	leases.drop(keyHashes);
	await Promise.all(keyHashes.map((hash) => env.RATE_LIMITER.getByName(hash).forget(options)));
}
