/**
 * A job's Durable Object under test: its record, its alarm run by hand until a condition holds, and what only the
 * object itself knows (its change history, its open event streams), read from inside its isolate.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { INSPECT, type JobDO } from "../../durable-objects/job/job-do";
import { openJobSql } from "../../durable-objects/job/schema";
import { JobStore } from "../../durable-objects/job/store";
import type { JobRecord } from "../../src/jobs/record";

export function stub(jobId: string) {
	return env.JOBS.getByName(jobId);
}

export async function record(jobId: string): Promise<JobRecord> {
	const job = await stub(jobId).get();
	if (!job) throw new Error(`no job ${jobId}`);
	return job;
}

/**
 * Runs the job's alarm until `done` holds (at most `max` steps). A loop rather than a fixed count: the platform
 * may also fire the (due) alarm by itself, and the DO serializes both.
 */
export async function stepUntil(jobId: string, done: (job: JobRecord) => boolean, max = 12): Promise<JobRecord> {
	let job = await record(jobId);
	for (let i = 0; i < max && !done(job); i++) {
		await runDurableObjectAlarm(stub(jobId));
		job = await record(jobId);
	}
	if (!done(job)) throw new Error(`job ${jobId} stuck: ${JSON.stringify({ status: job.status, error: job.error })}`);
	return job;
}

/** The job's stored change history, oldest first. */
export function history(
	jobId: string,
): Promise<{ at: string; status: string; event: string; detail: string | null }[]> {
	return runInDurableObject(stub(jobId), (_instance, state) => new JobStore(openJobSql(state.storage.sql)).history());
}

/** How many event streams the job's object has open. */
export function listeners(jobId: string): Promise<number> {
	return runInDurableObject(stub(jobId), (instance: JobDO) => instance[INSPECT]().listeners);
}
