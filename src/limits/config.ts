/**
 * An account's effective limits: its own value where it has one, else the Worker default from `[vars]`.
 * Pure, so the admin view, the middleware and the job route resolve them the same way.
 */

import type { AccountLimitOverrides } from "../db/accounts";

export type LimitName = keyof AccountLimitOverrides;
export const LIMIT_NAMES: LimitName[] = [
	"requests_per_minute",
	"jobs_per_minute",
	"max_concurrent_jobs",
	"monthly_spend_cap_usd",
];

export const NO_OVERRIDES: AccountLimitOverrides = {
	requests_per_minute: null,
	jobs_per_minute: null,
	max_concurrent_jobs: null,
	monthly_spend_cap_usd: null,
};

/** The Worker-wide defaults (`Config.limits`, from the vars: src/config/). `monthly_spend_cap_usd: null`: no cap. */
export interface DefaultLimits {
	requests_per_minute: number;
	jobs_per_minute: number;
	max_concurrent_jobs: number;
	monthly_spend_cap_usd: number | null;
}

export interface EffectiveLimit<T> {
	value: T;
	source: "account" | "default";
}

export interface EffectiveLimits {
	requests_per_minute: EffectiveLimit<number>;
	jobs_per_minute: EffectiveLimit<number>;
	max_concurrent_jobs: EffectiveLimit<number>;
	/** null: no cap. */
	monthly_spend_cap_usd: EffectiveLimit<number | null>;
}

function pick<T>(own: T | null, fallback: T): EffectiveLimit<T> {
	return own === null ? { value: fallback, source: "default" } : { value: own, source: "account" };
}

export function effectiveLimits(own: AccountLimitOverrides, defaults: DefaultLimits): EffectiveLimits {
	return {
		requests_per_minute: pick(own.requests_per_minute, defaults.requests_per_minute),
		jobs_per_minute: pick(own.jobs_per_minute, defaults.jobs_per_minute),
		max_concurrent_jobs: pick(own.max_concurrent_jobs, defaults.max_concurrent_jobs),
		monthly_spend_cap_usd: pick(own.monthly_spend_cap_usd, defaults.monthly_spend_cap_usd),
	};
}

/** The UTC calendar month holding `now`: its name (`2026-11`) and its [from, to) bounds as ISO strings. */
export function utcMonth(now: Date): { month: string; from: string; to: string } {
	const y = now.getUTCFullYear();
	const m = now.getUTCMonth();
	return {
		month: `${y}-${String(m + 1).padStart(2, "0")}`,
		from: new Date(Date.UTC(y, m, 1)).toISOString(),
		to: new Date(Date.UTC(y, m + 1, 1)).toISOString(),
	};
}
