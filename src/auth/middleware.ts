import { createMiddleware } from "hono/factory";
import { TOUCH_INTERVAL_MS, touchKey } from "../db/keys";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { timingSafeEqualStr } from "../lib/crypto";
import { admitKey } from "../limits/admission";
import { refusalDetail } from "../limits/charge";
import { rateLimitHeaders } from "../limits/headers";
import type { BucketName } from "../limits/rate-limit";
import type { Scope } from "../schemas/keys";
import { hashApiKey, looksLikeApiKey } from "./api-keys";

function bearer(header: string | undefined): string | null {
	if (!header) return null;
	const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
	return match?.[1] ?? null;
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
		const key = bearer(c.req.header("authorization"));
		if (!key) throw new ApiError("unauthorized", "Missing API key: send `Authorization: Bearer <key>`.");
		if (!looksLikeApiKey(key)) throw new ApiError("unauthorized", "Invalid API key.");
		const admission = await admitKey(c.env, await hashApiKey(key), scope, buckets, c.var.log);
		if (admission.status === "invalid") throw new ApiError("unauthorized", "Invalid API key.");
		if (admission.status === "forbidden") throw new ApiError("forbidden", `This key lacks the \`${scope}\` scope.`);
		const { caller, limits, decision } = admission;
		c.set("caller", caller);
		c.set("log", c.var.log.child({ account: caller.accountId, key_id: caller.keyId }));
		c.set("limits", limits);
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
