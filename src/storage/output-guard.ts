import { isTerminal } from "../jobs/state";

const VIDEO_KEY = /^outputs\/[^/]+\/(job_[a-z0-9]{1,64})\/video\.mp4$/;

/**
 * Whether a signed PUT may still write `key`. A job's video is verified (size, sha256) when the job settles, so
 * once the job is finished its backend's output URL, still within its lifetime, must not swap the bytes. The
 * job's Durable Object is asked, not the D1 index, which may lag it. Other keys (and a key no job record
 * claims: only the Worker signs these URLs, for jobs it is creating) stay writable.
 */
export async function outputWritable(env: Env, key: string): Promise<boolean> {
	const jobId = VIDEO_KEY.exec(key)?.[1];
	if (!jobId) return true;
	const job = await env.JOBS.getByName(jobId).get();
	return job === null || !isTerminal(job.status);
}
