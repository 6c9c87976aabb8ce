import { createMiddleware } from "hono/factory";
import { findKeyWithLimits } from "../db/accounts";
import { parseScopes, touchKey } from "../db/keys";
import type { AppEnv, Scope } from "../env";
import { ApiError } from "../errors";
import { timingSafeEqualStr } from "../lib/crypto";
import { chargeKey, chargesFor, refusalDetail } from "../limits/charge";
import { effectiveLimits } from "../limits/config";
import { rateLimitHeaders } from "../limits/headers";
import type { BucketName } from "../limits/rate-limit";
import { hashApiKey, looksLikeApiKey } from "./api-keys";

const TOUCH_INTERVAL_MS = 60_000;

function bearer(header: string | undefined): string | null {
	if (!header) return null;
	const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
	return match?.[1] ?? null;
}

/**
 * Requires a valid, unrevoked API key carrying `scope`. Reads D1 on every call so revocation is immediate (the same
 * query brings the account's limits). Then charges the key's `requests` bucket, and its `jobs` bucket too when
 * `buckets` says so, in one call to the key's RateLimiterDO: over the limit, 429 with `Retry-After`. Every response
 * after that carries the `RateLimit` and `RateLimit-Policy` fields.
 */
export function requireKey(scope: Scope, options: { buckets?: BucketName[] } = {}) {
	const buckets = options.buckets ?? ["requests"];
	return createMiddleware<AppEnv>(async (c, next) => {
		const key = bearer(c.req.header("authorization"));
		if (!key) throw new ApiError("unauthorized", "Missing API key: send `Authorization: Bearer <key>`.");
		if (!looksLikeApiKey(key)) throw new ApiError("unauthorized", "Invalid API key.");
		const row = await findKeyWithLimits(c.env.DB, await hashApiKey(key));
		if (!row || row.revoked_at) throw new ApiError("unauthorized", "Invalid API key.");
		const scopes = parseScopes(row.scopes);
		if (!scopes.includes(scope)) throw new ApiError("forbidden", `This key lacks the \`${scope}\` scope.`);
		c.set("caller", { keyId: row.id, accountId: row.account_id, scopes });
		c.set("log", c.var.log.child({ account: row.account_id, key_id: row.id }));
		const limits = effectiveLimits(row, c.env);
		c.set("limits", limits);
		const decision = await chargeKey(c.env, row.id, chargesFor(limits, buckets), c.var.log);
		if (decision && !decision.allowed) {
			throw new ApiError("rate_limited", refusalDetail(decision), { headers: rateLimitHeaders(decision) });
		}
		c.set("rateLimit", decision);
		const now = Date.now();
		if (!row.last_used_at || Date.parse(row.last_used_at) < now - TOUCH_INTERVAL_MS) {
			c.executionCtx.waitUntil(
				touchKey(c.env.DB, row.id, new Date(now).toISOString(), new Date(now - TOUCH_INTERVAL_MS).toISOString()),
			);
		}
		await next();
		if (decision) {
			for (const [name, value] of Object.entries(rateLimitHeaders(decision))) c.res.headers.set(name, value);
		}
	});
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
