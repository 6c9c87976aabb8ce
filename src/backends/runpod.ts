import type { VideoOutput } from "../jobs/state";
import type { RunpodConfig } from "./config";
import { type BackendFailure, type BackendResult, failure, httpFailure } from "./failure";
import { isObject, num } from "./http";
import { storeInlineVideo } from "./inline-video";
import { parseStatus, RunpodQueueClient, timingOf } from "./runpod-protocol";
import type { GpuBackend, HealthReport, JobContext, JobRun, PollStatus } from "./types";
import { runpodWebhookUrl } from "./webhook-token";

export const RUNPOD_BASE_URL = "https://api.runpod.ai/v2";
export const DEFAULT_RUNPOD_TIMEOUT_MS = 15_000;
/** RunPod's own default execution timeout (10 min) is too short for long Wan renders: 30 min unless configured. */
export const DEFAULT_EXECUTION_TIMEOUT_S = 1800;
/** The job's whole life at RunPod (queue + run + result retention); past it, `/status` answers 404. */
export const DEFAULT_TTL_S = 7200;

/** What the adapter needs of the Worker: where an inline video goes, and the key that signs webhook URLs. */
export interface RunpodDeps {
	bucket: R2Bucket;
	maxVideoBytes: number;
	signingSecret: string;
}

/** Maps RunPod's HTTP answers to what they mean for this call: a refused key or an unknown endpoint fail every job. */
function runpodHttpFailure(res: Response, what: string): BackendFailure {
	if (res.status === 401 || res.status === 403) {
		return failure("misconfigured", `${what}: RunPod refused the API key (HTTP ${res.status}).`);
	}
	if (res.status === 404) return failure("misconfigured", `${what}: RunPod does not know this endpoint (HTTP 404).`);
	return httpFailure(res, what);
}

/** Where a video that arrives inline is stored. */
export interface InlineVideoTarget {
	bucket: R2Bucket;
	key: string;
	maxBytes: number;
}

/** Reads a RunPod job object: our worker's `output.video`, or an older handler's inline `output.video_base64`. */
export async function interpretRunpodJob(body: unknown, inline: InlineVideoTarget): Promise<BackendResult<PollStatus>> {
	if (isObject(body) && body.status === "COMPLETED" && isObject(body.output)) {
		const base64 = body.output.video_base64;
		if (typeof base64 === "string") return storeInline(body, body.output, base64, inline);
	}
	return parseStatus(body);
}

async function storeInline(
	body: Record<string, unknown>,
	out: Record<string, unknown>,
	base64: string,
	target: InlineVideoTarget,
): Promise<BackendResult<PollStatus>> {
	const meta: Partial<VideoOutput> = {
		duration_s: num(out.duration_s),
		width: num(out.width),
		height: num(out.height),
		fps: num(out.fps),
	};
	const stored = await storeInlineVideo(target.bucket, target.key, base64, meta, target.maxBytes);
	if (!stored.ok) {
		return { ok: true, state: "failed", error: { code: "output_invalid", message: stored.message }, ...timingOf(body) };
	}
	return { ok: true, state: "completed", output: stored.video, ...timingOf(body) };
}

/** RunPod's bounds for a job's `policy` (ms): executionTimeout 5 s to 7 days, ttl 10 s to 7 days. */
const MIN_EXECUTION_TIMEOUT_MS = 5_000;
const MIN_TTL_MS = 10_000;

/**
 * The job's RunPod `policy` (https://docs.runpod.io/serverless/endpoints/send-requests, execution policies): the
 * backend's own, tightened by the job's limits, so RunPod itself stops a run past `max_runtime_s`
 * (`executionTimeout`) and drops a job still queued past `start_by` (`ttl`, counted from submission, covers the
 * queue and the run), freeing the GPU even when the Worker's cancel does not get through.
 */
export function policyFor(
	base: { executionTimeout: number; ttl: number },
	limits: JobContext["limits"],
	nowMs: number,
): { executionTimeout: number; ttl: number } {
	let executionTimeout = base.executionTimeout;
	if (limits.maxRuntimeS !== undefined) {
		executionTimeout = Math.max(MIN_EXECUTION_TIMEOUT_MS, Math.min(executionTimeout, limits.maxRuntimeS * 1000));
	}
	let ttl = base.ttl;
	if (limits.startBy !== undefined) {
		const untilStart = Math.max(0, Date.parse(limits.startBy) - nowMs);
		ttl = Math.max(MIN_TTL_MS, Math.min(ttl, untilStart + executionTimeout));
	}
	return { executionTimeout, ttl };
}

/**
 * The `runpod` kind: a RunPod Serverless queue endpoint running our GPU worker (docs/gpu-job-protocol.md).
 * `submit` sends a `webhook` back to the Worker so completion arrives at once; the webhook is only a hint (it is
 * unsigned and retried twice at most), the JobDO confirms with `/status` and keeps polling as the fallback.
 */
export class RunpodBackend implements GpuBackend {
	readonly kind = "runpod" as const;
	readonly #client: RunpodQueueClient;
	readonly #policy: { executionTimeout: number; ttl: number };
	readonly #webhook: boolean;

	get webhooks(): boolean {
		return this.#webhook;
	}
	readonly #deps: RunpodDeps;

	constructor(config: RunpodConfig, deps: RunpodDeps) {
		const base = (config.base_url ?? RUNPOD_BASE_URL).replace(/\/+$/, "");
		this.#client = new RunpodQueueClient({
			base: `${base}/${encodeURIComponent(config.endpoint_id)}`,
			bearer: config.api_key,
			timeoutMs: config.timeout_ms ?? DEFAULT_RUNPOD_TIMEOUT_MS,
			who: "RunPod",
			httpFailure: runpodHttpFailure,
		});
		this.#policy = {
			executionTimeout: (config.execution_timeout_s ?? DEFAULT_EXECUTION_TIMEOUT_S) * 1000,
			ttl: (config.ttl_s ?? DEFAULT_TTL_S) * 1000,
		};
		this.#webhook = config.webhook !== false;
		this.#deps = deps;
	}

	forJob(job: JobContext): JobRun {
		return {
			// The job input, the webhook and the policy (execution timeout, ttl).
			submit: async (input) => {
				const body: Record<string, unknown> = { input, policy: policyFor(this.#policy, job.limits, Date.now()) };
				if (this.#webhook) body.webhook = await runpodWebhookUrl(this.#deps.signingSecret, job.origin, job.id);
				return this.#client.run(body);
			},
			// A 404 means the ttl or the 30-minute result retention passed (`lost`).
			poll: async (remoteId) => {
				const answer = await this.#client.status(remoteId);
				if (!answer.ok) return answer;
				if (answer.lost) return { ok: true, state: "lost" };
				const { bucket, maxVideoBytes } = this.#deps;
				return interpretRunpodJob(answer.job, { bucket, key: job.videoKey, maxBytes: maxVideoBytes });
			},
			cancel: (remoteId) => this.#client.cancel(remoteId),
		};
	}

	/** `GET /health`: queue depth and workers, every field optional (the set has changed over time). */
	health(): Promise<HealthReport> {
		return this.#client.health((body) => {
			const jobs = isObject(body) && isObject(body.jobs) ? body.jobs : {};
			const workers = isObject(body) && isObject(body.workers) ? body.workers : {};
			return { queue_depth: num(jobs.inQueue) ?? 0, in_progress: num(jobs.inProgress) ?? 0, jobs, workers };
		});
	}
}
