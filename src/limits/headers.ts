import { z } from "@hono/zod-openapi";
import { PROBLEM_CONTENT_TYPE, ProblemSchema } from "../errors";
import { type RateLimitDecision, WINDOW_S } from "./rate-limit";

/**
 * The rate-limit fields of draft-ietf-httpapi-ratelimit-headers, one list member per bucket charged:
 * `RateLimit-Policy: "requests";q=1200;w=60` and `RateLimit: "requests";r=1187;t=1` (`r`: whole tokens left;
 * `t`: seconds until the next token when none is left, else until the bucket is full again). A refusal adds
 * `Retry-After`.
 */
export function rateLimitHeaders(decision: RateLimitDecision): Record<string, string> {
	const headers: Record<string, string> = {
		"ratelimit-policy": decision.buckets.map((b) => `"${b.name}";q=${b.quota};w=${WINDOW_S}`).join(", "),
		ratelimit: decision.buckets.map((b) => `"${b.name}";r=${b.remaining};t=${b.reset_s}`).join(", "),
	};
	if (!decision.allowed) headers["retry-after"] = String(decision.retry_after_s);
	return headers;
}

const headerDocs = z.object({
	"Retry-After": z.string().openapi({ description: "Whole seconds to wait before retrying.", example: "3" }),
	RateLimit: z.string().openapi({
		description:
			"Per bucket charged: `r` whole requests left, `t` seconds until the next token (when none is left) or until " +
			"the bucket is full (draft-ietf-httpapi-ratelimit-headers).",
		example: '"requests";r=0;t=3',
	}),
	"RateLimit-Policy": z.string().openapi({
		description: "Per bucket charged: `q` requests per window of `w` seconds (the burst is the full quota).",
		example: '"requests";q=1200;w=60',
	}),
});

/**
 * The 429 of every key-authenticated route: the key's request bucket (or, on job creation, its job bucket or the
 * account's concurrent-job limit) is exhausted.
 */
export const rateLimitedResponse = {
	429: {
		description: "Rate limited: retry after `Retry-After` seconds.",
		headers: headerDocs,
		content: { [PROBLEM_CONTENT_TYPE]: { schema: ProblemSchema } },
	},
};
