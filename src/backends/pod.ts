import type { PodConfig } from "./config";
import { isObject } from "./http";
import { parseStatus, RunpodQueueClient } from "./runpod-protocol";
import type { GpuBackend, HealthReport, JobContext, JobRun } from "./types";

/** Per-call timeout; the default suits a pod behind RunPod's proxy (which itself gives up at 100 s). */
export const DEFAULT_POD_TIMEOUT_MS = 15_000;

/**
 * The `pod` kind: the GPU worker in pod mode (a RunPod Pod, a vast.ai box, this machine), which serves RunPod's
 * queue API itself (src/backends/runpod-protocol.ts). The worker writes the video to R2 by the signed URLs of
 * the job input, so a run needs nothing of the job but its input.
 */
export class PodBackend implements GpuBackend {
	readonly kind = "pod" as const;
	readonly #client: RunpodQueueClient;

	constructor(config: PodConfig) {
		this.#client = new RunpodQueueClient({
			base: config.url,
			bearer: config.token,
			timeoutMs: config.timeout_ms ?? DEFAULT_POD_TIMEOUT_MS,
			who: "the backend",
		});
	}

	forJob(job: JobContext): JobRun {
		// The GPU worker stops a run past the job's max_runtime_s itself (`policy.executionTimeout` can only shorten
		// its own timeout), so the GPU is freed even if the Worker's cancel does not get through.
		const { maxRuntimeS } = job.limits;
		const policy = maxRuntimeS !== undefined ? { policy: { executionTimeout: maxRuntimeS * 1000 } } : {};
		return {
			submit: (input) => this.#client.run({ input, ...policy }),
			poll: async (remoteId) => {
				const answer = await this.#client.status(remoteId);
				if (!answer.ok) return answer;
				return answer.lost ? { ok: true, state: "lost" } : parseStatus(answer.job);
			},
			cancel: (remoteId) => this.#client.cancel(remoteId),
		};
	}

	/** `GET /health`: the worker's own report. */
	health(): Promise<HealthReport> {
		return this.#client.health((body) => (isObject(body) ? body : {}));
	}
}
