import type { JobSnapshot } from "../jobs/record";

/** Extra timings the job knows but its snapshot does not carry (from the backend's last poll). */
export interface JobTimings {
	/** Time queued at the backend before a worker took the job (RunPod `delayTime`: the cold start). */
	delayMs?: number;
	/** The run's execution time as the backend reports it. */
	executionMs?: number;
	/** Bytes of the output video. */
	outputBytes?: number;
}

const ms = (from: string | null, to: string | null): number => {
	if (!from || !to) return 0;
	const d = Date.parse(to) - Date.parse(from);
	return Number.isFinite(d) && d > 0 ? d : 0;
};

/**
 * The data point written for one finished job. Analytics Engine keeps blobs (strings, to group by) and doubles
 * (numbers, to sum and average) by position, so the order here is the schema the dashboards query:
 * blobs: status, model, backend_name, backend_kind, account_id, error_code;
 * doubles: queue_ms, execution_ms, end_to_end_ms, output_bytes, cost_usd, gpu_seconds, attempts, backend_delay_ms.
 */
export function jobDataPoint(snapshot: JobSnapshot, timings: JobTimings = {}): AnalyticsEngineDataPoint {
	return {
		indexes: [snapshot.model],
		blobs: [
			snapshot.status,
			snapshot.model,
			snapshot.backend.name,
			snapshot.backend.kind,
			snapshot.account_id,
			snapshot.error?.code ?? "",
		],
		doubles: [
			ms(snapshot.created_at, snapshot.started_at),
			ms(snapshot.started_at, snapshot.completed_at),
			ms(snapshot.created_at, snapshot.completed_at),
			timings.outputBytes ?? snapshot.output?.video.size ?? 0,
			snapshot.cost?.usd ?? 0,
			snapshot.cost?.gpu_seconds ?? 0,
			snapshot.attempts,
			timings.delayMs ?? 0,
		],
	};
}

/**
 * Writes a finished job's metrics to Workers Analytics Engine. A no-op when the `METRICS` binding is absent
 * (local dev, tests) or the job is not terminal; never throws, since metrics must not fail a job.
 * Call it once, where the job's terminal state is saved.
 */
export function recordJobMetrics(env: Pick<Env, "METRICS">, snapshot: JobSnapshot, timings: JobTimings = {}): boolean {
	if (!env.METRICS || !snapshot.completed_at) return false;
	try {
		env.METRICS.writeDataPoint(jobDataPoint(snapshot, timings));
		return true;
	} catch {
		return false;
	}
}
