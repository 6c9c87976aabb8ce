import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { TOUCH_INTERVAL_MS, touchKey } from "../db/keys";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { setBounded } from "../lib/bounded-map";
import { timingSafeEqualStr } from "../lib/crypto";
import { admitKey, type Caller } from "../limits/admission";
import { refusalDetail } from "../limits/charge";
import { rateLimitHeaders } from "../limits/headers";
import type { BucketName, RateLimitDecision } from "../limits/rate-limit";
import type { Scope } from "../schemas/keys";
import { hashApiKey, looksLikeApiKey } from "./api-keys";

function bearer(header: string | undefined): string | null {
	if (!header) return null;
	const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
	return match?.[1] ?? null;
}

/** The key from the Authorization header, checked for shape (no storage read yet). */
function presentedKey(header: string | undefined): string {
	const key = bearer(header);
	if (!key) throw new ApiError("unauthorized", "Missing API key: send `Authorization: Bearer <key>`.");
	if (!looksLikeApiKey(key)) throw new ApiError("unauthorized", "Invalid API key.");
	return key;
}

/**
 * Asks the key's gate object (one call) and applies its answer: the problem for a refused key, else `caller`,
 * `limits` and `rateLimit` set on the context and the key's `last_used_at` touched when due.
 */
async function admit(
	c: Context<AppEnv>,
	keyHash: string,
	scope: Scope,
	buckets: BucketName[],
): Promise<RateLimitDecision | null> {
	const admission = await admitKey(c.env, keyHash, scope, buckets, c.get("log"));
	if (admission.status === "invalid") {
		callerHints.delete(keyHash);
		throw new ApiError("unauthorized", "Invalid API key.");
	}
	if (admission.status === "forbidden") throw new ApiError("forbidden", `This key lacks the \`${scope}\` scope.`);
	const { caller, limits, decision } = admission;
	c.set("caller", caller);
	c.set("log", c.get("log").child({ account: caller.accountId, key_id: caller.keyId }));
	c.set("limits", limits);
	rememberCaller(keyHash, caller);
	if (decision && !decision.allowed) {
		throw new ApiError("rate_limited", refusalDetail(decision), { headers: rateLimitHeaders(decision) });
	}
	c.set("rateLimit", decision);
	if (admission.touch) {
		const now = Date.now();
		c.executionCtx.waitUntil(
			touchKey(c.env.DB, caller.keyId, new Date(now).toISOString(), new Date(now - TOUCH_INTERVAL_MS).toISOString()),
		);
	}
	return decision;
}

function setRateLimitHeaders(c: Context<AppEnv>, decision: RateLimitDecision | null): void {
	if (!decision) return;
	for (const [name, value] of Object.entries(rateLimitHeaders(decision))) c.res.headers.set(name, value);
}

/**
 * Requires a valid, unrevoked API key carrying `scope`, and charges its `requests` bucket (and its `jobs` bucket
 * too when `buckets` says so): one call to the key's gate object, which keeps the key's row and limits and learns
 * of a revocation before D1 does, so revocation is immediate. Over the limit: 429 with `Retry-After`. Every
 * response after that carries the `RateLimit` and `RateLimit-Policy` fields.
 */
export function requireKey(scope: Scope, options: { buckets?: BucketName[] } = {}) {
	const buckets = options.buckets ?? ["requests"];
	return createMiddleware<AppEnv>(async (c, next) => {
		const key = presentedKey(c.req.header("authorization"));
		const decision = await admit(c, await hashApiKey(key), scope, buckets);
		await next();
		setRateLimitHeaders(c, decision);
	});
}

/**
 * `requireKey` for hot reads: the gate is asked exactly as there, but the handler runs beside it instead of after
 * it. The handler gets `admitted` (await it before anything of the caller's leaves the Worker: it rejects with the
 * gate's problem) and `callerHint`, the account this key had when last admitted in this isolate, to start the
 * caller's storage read at once. A revoked key is therefore refused exactly as before: every response waits for
 * the gate's answer; the hint only lets a read start early, and is dropped when the gate disagrees.
 */
export function requireKeyAlongside(scope: Scope) {
	return createMiddleware<AppEnv>(async (c, next) => {
		const key = presentedKey(c.req.header("authorization"));
		const keyHash = await hashApiKey(key);
		let decision: RateLimitDecision | null = null;
		const admitted = admit(c, keyHash, scope, ["requests"]).then((d) => {
			decision = d;
		});
		// The handler awaits it; this keeps a refusal the handler never reached from going unhandled.
		admitted.catch(() => undefined);
		c.set("admitted", admitted);
		c.set("callerHint", callerHint(keyHash, scope));
		await next();
		// The gate's refusal wins over whatever the handler answered (a 400 for a malformed id, say), as it would
		// have under `requireKey`: thrown here, it becomes the response.
		const refused = await admitted.then(
			() => null,
			(err: unknown) => err,
		);
		if (refused) throw refused;
		setRateLimitHeaders(c, decision);
	});
}

/**
 * Who each key was when last admitted in this isolate (bounded in size and age). Only a hint for starting work
 * early (see `requireKeyAlongside`): never an admission, so it cannot delay a revocation.
 */
const callerHints = new Map<string, { caller: Caller; until: number }>();
const HINT_TTL_MS = 60_000;
const MAX_HINTS = 1000;

function rememberCaller(keyHash: string, caller: Caller): void {
	setBounded(callerHints, keyHash, { caller, until: Date.now() + HINT_TTL_MS }, MAX_HINTS);
}

function callerHint(keyHash: string, scope: Scope): Caller | null {
	const hint = callerHints.get(keyHash);
	if (!hint || hint.until < Date.now() || !hint.caller.scopes.includes(scope)) return null;
	return hint.caller;
}

/** Requires the admin token (a Worker secret), compared in constant time. */
export const requireAdmin = createMiddleware<AppEnv>(async (c, next) => {
	const token = bearer(c.req.header("authorization"));
	const expected = c.env.ADMIN_TOKEN;
	if (!expected) throw new ApiError("forbidden", "Admin routes are disabled: ADMIN_TOKEN is not set.");
	if (!token || !(await timingSafeEqualStr(token, expected))) {
		throw new ApiError("unauthorized", "Missing or invalid admin token.");
	}
	await next();
});
