/**
 * A job's own time limits besides the service's deadline, as pure functions: `start_by` (it must have started
 * running by then) and `max_runtime_s` (its run is stopped past it). The JobDO checks them at each step and never
 * sleeps past the next one, so a limit is enforced on time even while the job waits or polls slowly.
 */
import type { JobPriority } from "../schemas/jobs";
import type { JobRecord } from "./record";
import type { JobError } from "./state";

/** The rank of each priority in the backend's queue (higher first, within one account only). */
export const PRIORITY_RANK: Record<JobPriority, number> = { low: 0, normal: 1, high: 2 };

type Limited = Pick<JobRecord, "spec" | "status" | "started_at">;

/** When the job must have started running (epoch ms), while it has not; null when that no longer applies. */
function startByAt(job: Limited): number | null {
	if (job.status !== "queued" || !job.spec.start_by) return null;
	return Date.parse(job.spec.start_by);
}

/** When the running job's run is stopped (epoch ms); null when it is not running or has no limit. */
function runtimeEndsAt(job: Limited): number | null {
	if (job.status !== "running" || !job.started_at || job.spec.max_runtime_s === undefined) return null;
	return Date.parse(job.started_at) + job.spec.max_runtime_s * 1000;
}

/** The latest the job's next step may be: the deadline, or a sooner limit of its own. */
export function wakeLimit(job: Limited, deadlineAt: number): number {
	return Math.min(
		deadlineAt,
		startByAt(job) ?? Number.POSITIVE_INFINITY,
		runtimeEndsAt(job) ?? Number.POSITIVE_INFINITY,
	);
}

/** The error the job fails with when one of its own limits has passed at `nowMs`, or null. */
export function limitReached(job: Limited, nowMs: number): JobError | null {
	const startBy = startByAt(job);
	if (startBy !== null && nowMs >= startBy) {
		return {
			code: "not_started_in_time",
			message: `No backend started the job by its start_by (${job.spec.start_by}).`,
		};
	}
	const ends = runtimeEndsAt(job);
	if (ends !== null && nowMs >= ends) {
		return {
			code: "max_runtime_exceeded",
			message: `The job ran longer than its max_runtime_s (${job.spec.max_runtime_s} s); its run was canceled.`,
		};
	}
	return null;
}
