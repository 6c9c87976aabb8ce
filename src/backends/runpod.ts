import type { VideoOutput } from "../jobs/state";
import { backendRequest, readJson } from "./http";
import { storeInlineVideo } from "./inline-video";
import { httpFailure, isObject, networkFailure, parseStatus } from "./pod";
import type { BackendFailure, BackendResult, GpuBackend, GpuJobInput, HealthReport, PollStatus } from "./types";

export const RUNPOD_BASE_URL = "https://api.runpod.ai/v2";
export const DEFAULT_RUNPOD_TIMEOUT_MS = 15_000;
/** RunPod's own default execution timeout (10 min) is too short for long Wan renders: 30 min unless configured. */
export const DEFAULT_EXECUTION_TIMEOUT_S = 1800;
/** The job's whole life at RunPod (queue + run + result retention); past it, `/status` answers 404. */
export const DEFAULT_TTL_S = 7200;

export interface RunpodConfig {
	endpoint_id: string;
	api_key: string;
	base_url?: string;
	timeout_ms?: number;
	execution_timeout_s?: number;
	ttl_s?: number;
}

/** What the adapter needs of the job it serves: the webhook URL and where an inline video is stored. */
export interface RunpodJobContext {
	/** `…/v1/internal/runpod/{job_id}?token=…`; absent: no webhook (polling only). */
	webhookUrl?: string;
	bucket?: R2Bucket;
	videoKey?: string;
	maxVideoBytes?: number;
}

const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/** RunPod's statuses, for the `/health` and emulator code that shares them. */
export const RUNPOD_STATUSES = ["IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"] as const;

/** Maps RunPod's HTTP answers to what they mean for this call. */
function runpodHttpFailure(res: Response, what: string): BackendFailure {
	if (res.status === 401 || res.status === 403) {
		return {
			ok: false,
			kind: "permanent",
			refused: true,
			misconfigured: true,
			message: `${what}: RunPod refused the API key (HTTP ${res.status}).`,
		};
	}
	if (res.status === 404) {
		return {
			ok: false,
			kind: "permanent",
			refused: true,
			misconfigured: true,
			message: `${what}: RunPod does not know this endpoint (HTTP 404).`,
		};
	}
	return httpFailure(res, what);
}

/**
 * The `runpod` kind: a RunPod Serverless queue endpoint running our GPU worker (docs/gpu-job-protocol.md).
 * `submit` sends a `webhook` back to the Worker so completion arrives at once; the webhook is only a hint (it is
 * unsigned and retried twice at most), the JobDO confirms with `/status` and keeps polling as the fallback.
 */
export class RunpodBackend implements GpuBackend {
	readonly kind = "runpod" as const;
	readonly #base: string;
	readonly #key: string;
	readonly #timeoutMs: number;
	readonly #policy: { executionTimeout: number; ttl: number };
	readonly #job: RunpodJobContext;

	constructor(config: RunpodConfig, job: RunpodJobContext = {}) {
		this.#base = `${(config.base_url ?? RUNPOD_BASE_URL).replace(/\/+$/, "")}/${encodeURIComponent(config.endpoint_id)}`;
		this.#key = config.api_key;
		this.#timeoutMs = config.timeout_ms ?? DEFAULT_RUNPOD_TIMEOUT_MS;
		this.#policy = {
			executionTimeout: (config.execution_timeout_s ?? DEFAULT_EXECUTION_TIMEOUT_S) * 1000,
			ttl: (config.ttl_s ?? DEFAULT_TTL_S) * 1000,
		};
		this.#job = job;
	}

	#call(method: "GET" | "POST", path: string, body?: unknown): Promise<Response> {
		return backendRequest(`${this.#base}${path}`, { method, bearer: this.#key, body, timeoutMs: this.#timeoutMs });
	}

	/** `POST /run` with the job input, the webhook and the policy (execution timeout, ttl). */
	async submit(input: GpuJobInput): Promise<BackendResult<{ remoteId: string }>> {
		const body: Record<string, unknown> = { input, policy: this.#policy };
		if (this.#job.webhookUrl) body.webhook = this.#job.webhookUrl;
		let res: Response;
		try {
			res = await this.#call("POST", "/run", body);
		} catch (err) {
			return networkFailure(err, "Submit");
		}
		if (!res.ok) {
			await res.body?.cancel();
			return runpodHttpFailure(res, "Submit");
		}
		const json = await readJson(res);
		const id = isObject(json) && typeof json.id === "string" ? json.id : undefined;
		if (!id) return { ok: false, kind: "transient", message: "Submit: RunPod answered without a job id." };
		return { ok: true, remoteId: id };
	}

	/** `GET /status/{id}`: 404 means the ttl or the 30-minute result retention passed (`lost`). */
	async poll(remoteId: string): Promise<BackendResult<PollStatus>> {
		let res: Response;
		try {
			res = await this.#call("GET", `/status/${encodeURIComponent(remoteId)}`);
		} catch (err) {
			return networkFailure(err, "Status");
		}
		if (res.status === 404) {
			await res.body?.cancel();
			return { ok: true, state: "lost" };
		}
		if (!res.ok) {
			await res.body?.cancel();
			return runpodHttpFailure(res, "Status");
		}
		return this.interpret(await readJson(res));
	}

	/** Reads a RunPod job object: our worker's `output.video`, or an older handler's inline `output.video_base64`. */
	async interpret(body: unknown): Promise<BackendResult<PollStatus>> {
		if (isObject(body) && body.status === "COMPLETED" && isObject(body.output)) {
			const inline = body.output.video_base64;
			if (typeof inline === "string") return this.#storeInline(body, inline);
		}
		return parseStatus(body);
	}

	async #storeInline(body: Record<string, unknown>, inline: string): Promise<BackendResult<PollStatus>> {
		const timing = { executionMs: num(body.executionTime), delayMs: num(body.delayTime) };
		const { bucket, videoKey, maxVideoBytes } = this.#job;
		if (!bucket || !videoKey) {
			return { ok: false, kind: "permanent", message: "An inline video arrived with nowhere to store it." };
		}
		const out = isObject(body.output) ? body.output : {};
		const meta: Partial<VideoOutput> = {
			duration_s: num(out.duration_s),
			width: num(out.width),
			height: num(out.height),
			fps: num(out.fps),
		};
		const stored = await storeInlineVideo(bucket, videoKey, inline, meta, maxVideoBytes);
		if (!stored.ok) {
			return { ok: true, state: "failed", error: { code: "output_invalid", message: stored.message }, ...timing };
		}
		return { ok: true, state: "completed", output: stored.video, ...timing };
	}

	/** `POST /cancel/{id}`; a job RunPod no longer knows counts as canceled. */
	async cancel(remoteId: string): Promise<BackendResult<Record<never, never>>> {
		let res: Response;
		try {
			res = await this.#call("POST", `/cancel/${encodeURIComponent(remoteId)}`);
		} catch (err) {
			return networkFailure(err, "Cancel");
		}
		await res.body?.cancel();
		if (res.ok || res.status === 404) return { ok: true };
		return runpodHttpFailure(res, "Cancel");
	}

	/** `GET /health`: queue depth and workers, every field optional (the set has changed over time). */
	async health(): Promise<HealthReport> {
		const started = Date.now();
		try {
			const res = await this.#call("GET", "/health");
			const body = await readJson(res);
			const latency_ms = Date.now() - started;
			if (!res.ok) {
				const failure = runpodHttpFailure(res, "Health");
				return { reachable: false, latency_ms, details: { status: res.status, error: failure.message } };
			}
			const jobs = isObject(body) && isObject(body.jobs) ? body.jobs : {};
			const workers = isObject(body) && isObject(body.workers) ? body.workers : {};
			return {
				reachable: true,
				latency_ms,
				details: {
					queue_depth: num(jobs.inQueue) ?? 0,
					in_progress: num(jobs.inProgress) ?? 0,
					jobs,
					workers,
				},
			};
		} catch (err) {
			return {
				reachable: false,
				latency_ms: Date.now() - started,
				details: { error: networkFailure(err, "Health").message },
			};
		}
	}
}
