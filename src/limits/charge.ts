import type { Logger } from "../lib/logger";
import type { EffectiveLimits } from "./config";
import type { BucketCharge, BucketName, RateLimitDecision } from "./rate-limit";

/** The buckets a request is charged to, with the account's current quotas. */
export function chargesFor(limits: EffectiveLimits, buckets: BucketName[]): BucketCharge[] {
	return buckets.map((name) => ({
		name,
		quota: name === "requests" ? limits.requests_per_minute.value : limits.jobs_per_minute.value,
	}));
}

/**
 * Charges the key's buckets: one RPC to its RateLimiterDO. When the object cannot be reached the request goes
 * through (null): an outage of the limiter must not take the whole API down with it.
 */
export async function chargeKey(
	env: Env,
	keyId: string,
	charges: BucketCharge[],
	log: Logger,
): Promise<RateLimitDecision | null> {
	try {
		return await env.RATE_LIMITER.getByName(keyId).take(charges);
	} catch (err) {
		log.error("rate_limiter_unavailable", { error: err instanceof Error ? err.message : String(err) });
		return null;
	}
}

const UNITS: Record<BucketName, string> = { requests: "requests", jobs: "job creations" };

/** The problem detail of a refusal: which limit, and when to retry. */
export function refusalDetail(decision: RateLimitDecision): string {
	const limits = decision.buckets
		.filter((b) => decision.limited_by.includes(b.name))
		.map((b) => `${b.quota} ${UNITS[b.name]} per minute`);
	return `Rate limit of ${limits.join(" and ")} for this API key reached; retry in ${decision.retry_after_s} s.`;
}
