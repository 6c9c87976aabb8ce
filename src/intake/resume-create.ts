import { finishIdempotent } from "../db/idempotency";
import { releaseJobSlot } from "../db/job-slots";
import type { JobRecord } from "../jobs/record";

/**
 * Picks up a creation whose request died midway (`beginIdempotent` answered `resume`). If it got as far as the
 * job's Durable Object, the claim is completed with that job, which is returned. Otherwise the slot reservation it
 * may have left is dropped and null returned: the caller creates the job afresh under the claimed id.
 */
export async function resumeAbandonedCreate(
	env: Env,
	accountId: string,
	key: string,
	jobId: string,
): Promise<JobRecord | null> {
	const job = await env.JOBS.getByName(jobId).get();
	if (job) {
		await finishIdempotent(env.DB, accountId, key, jobId);
		return job;
	}
	await releaseJobSlot(env.DB, jobId);
	return null;
}
