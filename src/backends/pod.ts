import { parseRetryAfter } from "../jobs/backoff";
import type { JobProgress, VideoOutput } from "../jobs/state";
import { backendRequest, readJson } from "./http";
import { parseRemoteError } from "./remote-error";
import type { BackendFailure, BackendResult, GpuBackend, GpuJobInput, HealthReport, PollStatus } from "./types";

export interface PodConfig {
	url: string;
	token?: string;
	/** Per-call timeout; the default suits a pod behind RunPod's proxy (which itself gives up at 100 s). */
	timeout_ms?: number;
}

export const DEFAULT_POD_TIMEOUT_MS = 15_000;

type Json = Record<string, unknown>;

export function isObject(v: unknown): v is Json {
	return typeof v === "object" && v !== null && !Array.isArray(v);
}

const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

/** Maps an HTTP status to a failure: 429 and 5xx are worth retrying, other 4xx mean the request is wrong. */
export function httpFailure(res: Response, what: string): BackendFailure {
	const transient = res.status === 429 || res.status === 408 || res.status >= 500;
	return {
		ok: false,
		kind: transient ? "transient" : "permanent",
		retryAfterMs: parseRetryAfter(res.headers.get("retry-after")),
		message: `${what}: the backend answered HTTP ${res.status}.`,
		refused: true,
	};
}

/** A fetch that threw (timeout, refused connection): always worth retrying. */
export function networkFailure(err: unknown, what: string): BackendFailure {
	const name = err instanceof Error ? err.name : "";
	const reason = name === "TimeoutError" || name === "AbortError" ? "timed out" : "could not be reached";
	return { ok: false, kind: "transient", message: `${what}: the backend ${reason}.` };
}

function parseProgress(output: unknown): JobProgress | undefined {
	if (!isObject(output) || !isObject(output.progress)) return undefined;
	const p = output.progress;
	return { percent: num(p.percent) ?? 0, stage: str(p.stage), message: str(p.message) };
}

export function parseVideo(output: unknown): VideoOutput | undefined {
	if (!isObject(output) || !isObject(output.video)) return undefined;
	const v = output.video;
	const size = num(v.size);
	if (size === undefined) return undefined;
	return {
		content_type: str(v.content_type) ?? "video/mp4",
		size,
		sha256: str(v.sha256),
		duration_s: num(v.duration_s),
		width: num(v.width),
		height: num(v.height),
		fps: num(v.fps),
		...(Array.isArray(v.parts) ? { parts: v.parts.filter(isObject).map(parsePart) } : {}),
	};
}

/** One `{ part_number, etag }` of a multipart-written video; a malformed one reads as part 0 (a gap). */
function parsePart(p: Json): { part_number: number; etag: string } {
	return { part_number: num(p.part_number) ?? 0, etag: str(p.etag) ?? "" };
}

/** Interprets a RunPod-style job object from `/status`. */
export function parseStatus(body: unknown): BackendResult<PollStatus> {
	if (!isObject(body) || typeof body.status !== "string") {
		return { ok: false, kind: "transient", message: "Status: the backend sent an unreadable answer." };
	}
	const timing = { executionMs: num(body.executionTime), delayMs: num(body.delayTime) };
	switch (body.status) {
		case "IN_QUEUE":
			return { ok: true, state: "queued", ...timing };
		case "IN_PROGRESS":
		case "RUNNING":
			return { ok: true, state: "running", progress: parseProgress(body.output), ...timing };
		case "COMPLETED": {
			const video = parseVideo(body.output);
			// COMPLETED without output is a failed result delivery (worker-comfyui #167).
			if (!video) {
				return {
					ok: true,
					state: "failed",
					error: { code: "output_missing", message: "The backend completed without reporting a video." },
					...timing,
				};
			}
			return { ok: true, state: "completed", output: video, ...timing };
		}
		case "FAILED":
			return { ok: true, state: "failed", error: parseRemoteError(body.error), ...timing };
		case "TIMED_OUT":
			return {
				ok: true,
				state: "failed",
				error: { code: "timeout", message: "The backend timed the job out." },
				...timing,
			};
		case "CANCELLED":
			return { ok: true, state: "canceled", ...timing };
		default:
			return { ok: false, kind: "transient", message: `Status: unknown backend status ${body.status.slice(0, 40)}.` };
	}
}

/**
 * The `pod` kind: the GPU worker in pod mode, which speaks RunPod's queue API (`/run`, `/status/{id}`,
 * `/cancel/{id}`, `/health`). Every call carries a timeout; failures come back classified, never thrown.
 */
export class PodBackend implements GpuBackend {
	readonly kind = "pod" as const;
	readonly #base: string;
	readonly #token?: string;
	readonly #timeoutMs: number;

	constructor(config: PodConfig) {
		this.#base = config.url.replace(/\/+$/, "");
		this.#token = config.token;
		this.#timeoutMs = config.timeout_ms ?? DEFAULT_POD_TIMEOUT_MS;
	}

	#call(method: "GET" | "POST", path: string, body?: unknown): Promise<Response> {
		return backendRequest(`${this.#base}${path}`, { method, bearer: this.#token, body, timeoutMs: this.#timeoutMs });
	}

	/** `POST /run`: queues the job; the id it answers is what `poll` and `cancel` take. */
	async submit(input: GpuJobInput): Promise<BackendResult<{ remoteId: string }>> {
		let res: Response;
		try {
			res = await this.#call("POST", "/run", { input });
		} catch (err) {
			return networkFailure(err, "Submit");
		}
		if (!res.ok) {
			await res.body?.cancel();
			return httpFailure(res, "Submit");
		}
		const body = await readJson(res);
		const id = isObject(body) ? str(body.id) : undefined;
		// No id means we cannot follow the job; retrying may create a duplicate, but a job nobody follows is worse.
		if (!id) return { ok: false, kind: "transient", message: "Submit: the backend answered without a job id." };
		return { ok: true, remoteId: id };
	}

	/** `GET /status/{id}`; a 404 means the backend no longer knows the job (`lost`). */
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
			return httpFailure(res, "Status");
		}
		return parseStatus(await readJson(res));
	}

	/** `POST /cancel/{id}`. A job the backend no longer knows counts as canceled. */
	async cancel(remoteId: string): Promise<BackendResult<Record<never, never>>> {
		let res: Response;
		try {
			res = await this.#call("POST", `/cancel/${encodeURIComponent(remoteId)}`);
		} catch (err) {
			return networkFailure(err, "Cancel");
		}
		await res.body?.cancel();
		if (res.ok || res.status === 404) return { ok: true };
		return httpFailure(res, "Cancel");
	}

	/** `GET /health`, timed. */
	async health(): Promise<HealthReport> {
		const started = Date.now();
		try {
			const res = await this.#call("GET", "/health");
			const body = await readJson(res);
			const latency_ms = Date.now() - started;
			if (!res.ok) return { reachable: false, latency_ms, details: { status: res.status } };
			return { reachable: true, latency_ms, details: isObject(body) ? body : {} };
		} catch (err) {
			return {
				reachable: false,
				latency_ms: Date.now() - started,
				details: { error: networkFailure(err, "Health").message },
			};
		}
	}
}
