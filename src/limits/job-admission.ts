import { spendBetween } from "../db/accounts";
import { releaseJobSlot, reserveJobSlot } from "../db/job-slots";
import { ApiError } from "../errors";
import type { EffectiveLimits } from "./config";
import { utcMonth } from "./config";

/** A full account learns nothing of when a job will end: it is told to look again after this long. */
export const CONCURRENCY_RETRY_AFTER_S = 5;

/** Dollars as people write them: cents when whole cents, else up to micro-dollars (job costs are that small). */
const usd = (n: number) =>
	Number.isInteger(Math.round(n * 1e6) / 1e4) ? `$${n.toFixed(2)}` : `$${Number(n.toFixed(6))}`;

/**
 * Refuses (402 `spend_cap_reached`) when the account's recorded cost this UTC month has reached its cap. Costs are
 * recorded as jobs finish, so jobs still running count once they end.
 */
export async function checkSpendCap(
	db: D1Database,
	accountId: string,
	limits: EffectiveLimits,
	now: Date,
): Promise<void> {
	const cap = limits.monthly_spend_cap_usd.value;
	if (cap === null) return;
	const month = utcMonth(now);
	const spent = await spendBetween(db, accountId, month.from, month.to);
	if (spent >= cap) {
		throw new ApiError(
			"spend_cap_reached",
			`The monthly spend cap of ${usd(cap)} is reached: ${usd(spent)} spent in ${month.month} (UTC). ` +
				"New jobs are refused until the month ends or the cap is raised.",
		);
	}
}

/**
 * Reserves one of the account's concurrent-job slots for the job (exact under racing creations, see
 * src/db/job-slots.ts), or refuses with 429 `rate_limited`. The caller must `release` it if the job is not created.
 */
export async function reserveSlot(
	db: D1Database,
	job: { id: string; accountId: string; model: string; createdAt: string },
	limits: EffectiveLimits,
	nowMs: number,
): Promise<{ release: () => Promise<void> }> {
	const max = limits.max_concurrent_jobs.value;
	const reserved = await reserveJobSlot(
		db,
		{ jobId: job.id, accountId: job.accountId, model: job.model, createdAt: job.createdAt },
		max,
		nowMs,
	);
	if (!reserved) {
		throw new ApiError(
			"rate_limited",
			`The limit of ${max} concurrent jobs (queued or running) for this account is reached; ` +
				"a new job can start when one of them ends.",
			{ headers: { "retry-after": String(CONCURRENCY_RETRY_AFTER_S) } },
		);
	}
	return { release: () => releaseJobSlot(db, job.id) };
}
