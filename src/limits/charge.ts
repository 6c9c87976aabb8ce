import type { EffectiveLimits } from "./config";
import type { BucketCharge, BucketName, RateLimitDecision } from "./rate-limit";

/** The buckets a request is charged to, with the account's current quotas. */
export function chargesFor(limits: EffectiveLimits, buckets: BucketName[]): BucketCharge[] {
	return buckets.map((name) => ({
		name,
		quota: name === "requests" ? limits.requests_per_minute.value : limits.jobs_per_minute.value,
	}));
}

const UNITS: Record<BucketName, string> = { requests: "requests", jobs: "job creations" };

/** The problem detail of a refusal: which limit, and when to retry. */
export function refusalDetail(decision: RateLimitDecision): string {
	const limits = decision.buckets
		.filter((b) => decision.limited_by.includes(b.name))
		.map((b) => `${b.quota} ${UNITS[b.name]} per minute`);
	return `Rate limit of ${limits.join(" and ")} for this API key reached; retry in ${decision.retry_after_s} s.`;
}
