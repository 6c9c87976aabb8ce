import { isTerminal } from "../jobs/state";
import { jobVideoKey } from "./index";

/** A job's video key: the per-job key of old jobs, or one per submission (`objectKeys.videoKey`). */
export const VIDEO_KEY = /^outputs\/[^/]+\/(job_[a-z0-9]{1,64})\/(?:att_\d{1,9}\/)?video\.mp4$/;

/**
 * Whether a signed PUT may still write `key`. Only the job's current submission may write its video, and only
 * until the job is finished: the video is verified (size, sha256) when the job settles, so neither a run the job
 * gave up on nor a late PUT within the URL's lifetime may swap the bytes. The job's Durable Object is asked, not
 * the D1 index, which may lag it. Other keys (and a key no job record claims: only the Worker signs these URLs,
 * for jobs it is creating) stay writable.
 */
export async function outputWritable(env: Env, key: string): Promise<boolean> {
	const jobId = VIDEO_KEY.exec(key)?.[1];
	if (!jobId) return true;
	const job = await env.JOBS.getByName(jobId).get();
	if (job === null) return true;
	return !isTerminal(job.status) && jobVideoKey(job) === key;
}

/** Whether `key` is a job's video: written once, never replaced (the stored bytes are what the job verified). */
export function isVideoKey(key: string): boolean {
	return VIDEO_KEY.test(key);
}
