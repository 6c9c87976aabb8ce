/**
 * RunPod's queue API, as RunPod Serverless endpoints serve it and as the GPU worker in pod mode serves it too:
 * `POST /run`, `GET /status/{id}`, `POST /cancel/{id}`, `GET /health`
 * (https://docs.runpod.io/serverless/endpoints/operation-reference), and the job object `/status` answers. The
 * `pod` and `runpod` adapters are two configurations of this one client. Every call has a timeout; failures come
 * back classified, never thrown.
 */
import type { JobProgress, VideoOutput } from "../jobs/state";
import { type BackendFailure, type BackendResult, failure, httpFailure, networkFailure } from "./failure";
import { backendRequest, isObject, num, readJson, str } from "./http";
import { parseRemoteError } from "./remote-error";
import type { HealthReport, PollStatus } from "./types";

export interface QueueClientOptions {
	/** The API's base URL, up to (not including) `/run`. */
	base: string;
	bearer?: string | null;
	timeoutMs: number;
	/** Who answers, in messages: "the backend", "RunPod". */
	who: string;
	/** What an HTTP error answer means here (RunPod's 401 and 404 say more than a pod's). */
	httpFailure?: (res: Response, what: string) => BackendFailure;
}

/** What `/status` said: the job object, or that the API no longer knows the id (404). */
export type StatusAnswer = { lost: true } | { lost: false; job: unknown };

export class RunpodQueueClient {
	readonly #base: string;
	readonly #bearer?: string;
	readonly #timeoutMs: number;
	readonly #who: string;
	readonly #httpFailure: (res: Response, what: string) => BackendFailure;

	constructor(options: QueueClientOptions) {
		this.#base = options.base.replace(/\/+$/, "");
		this.#bearer = options.bearer ?? undefined;
		this.#timeoutMs = options.timeoutMs;
		this.#who = options.who;
		this.#httpFailure = options.httpFailure ?? httpFailure;
	}

	#call(method: "GET" | "POST", path: string, body?: unknown): Promise<Response> {
		return backendRequest(`${this.#base}${path}`, { method, bearer: this.#bearer, body, timeoutMs: this.#timeoutMs });
	}

	/** `POST /run` with `body` (`{ input, … }`): queues the job; its id is what `status` and `cancel` take. */
	async run(body: Record<string, unknown>): Promise<BackendResult<{ remoteId: string }>> {
		let res: Response;
		try {
			res = await this.#call("POST", "/run", body);
		} catch (err) {
			return networkFailure(err, "Submit");
		}
		if (!res.ok) {
			await res.body?.cancel();
			return this.#httpFailure(res, "Submit");
		}
		const json = await readJson(res);
		const id = isObject(json) ? str(json.id) : undefined;
		// No id means we cannot follow the job; retrying may create a duplicate, but a job nobody follows is worse.
		if (!id) return failure("bad_answer", `Submit: ${this.#who} answered without a job id.`);
		return { ok: true, remoteId: id };
	}

	/** `GET /status/{id}`. */
	async status(remoteId: string): Promise<BackendResult<StatusAnswer>> {
		let res: Response;
		try {
			res = await this.#call("GET", `/status/${encodeURIComponent(remoteId)}`);
		} catch (err) {
			return networkFailure(err, "Status");
		}
		if (res.status === 404) {
			await res.body?.cancel();
			return { ok: true, lost: true };
		}
		if (!res.ok) {
			await res.body?.cancel();
			return this.#httpFailure(res, "Status");
		}
		return { ok: true, lost: false, job: await readJson(res) };
	}

	/** `POST /cancel/{id}`. A job the API no longer knows counts as canceled. */
	async cancel(remoteId: string): Promise<BackendResult<Record<never, never>>> {
		let res: Response;
		try {
			res = await this.#call("POST", `/cancel/${encodeURIComponent(remoteId)}`);
		} catch (err) {
			return networkFailure(err, "Cancel");
		}
		await res.body?.cancel();
		if (res.ok || res.status === 404) return { ok: true };
		return this.#httpFailure(res, "Cancel");
	}

	/** `GET /health`, timed; `details` picks what to show of its answer. */
	async health(details: (body: unknown) => Record<string, unknown>): Promise<HealthReport> {
		const started = Date.now();
		try {
			const res = await this.#call("GET", "/health");
			const body = await readJson(res);
			const latency_ms = Date.now() - started;
			if (!res.ok) {
				const error = this.#httpFailure(res, "Health").message;
				return { reachable: false, latency_ms, details: { status: res.status, error } };
			}
			return { reachable: true, latency_ms, details: details(body) };
		} catch (err) {
			return {
				reachable: false,
				latency_ms: Date.now() - started,
				details: { error: networkFailure(err, "Health").message },
			};
		}
	}
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
function parsePart(p: Record<string, unknown>): { part_number: number; etag: string } {
	return { part_number: num(p.part_number) ?? 0, etag: str(p.etag) ?? "" };
}

/** The timings RunPod puts on a job object: time at a worker (the cost) and time queued before it. */
export function timingOf(body: Record<string, unknown>): Pick<PollStatus, "executionMs" | "delayMs"> {
	return { executionMs: num(body.executionTime), delayMs: num(body.delayTime) };
}

/** Interprets a job object from `/status`. */
/** At most this many worker lines are read from one answer. */
const MAX_LINES_PER_ANSWER = 100;

/**
 * The worker's log lines about the job: `logs` in our worker's pod-mode answer, or `output.logs` in the progress
 * it reports through RunPod (gpu-worker/gpu_worker/log.py). Anything else there is ignored.
 */
function logsOf(body: Record<string, unknown>): { logs?: string[] } {
	const raw = Array.isArray(body.logs) ? body.logs : isObject(body.output) ? body.output.logs : undefined;
	if (!Array.isArray(raw)) return {};
	const lines = raw.filter((l): l is string => typeof l === "string").slice(-MAX_LINES_PER_ANSWER);
	return lines.length > 0 ? { logs: lines } : {};
}

export function parseStatus(body: unknown): BackendResult<PollStatus> {
	if (!isObject(body) || typeof body.status !== "string") {
		return failure("bad_answer", "Status: the backend sent an unreadable answer.");
	}
	const timing = { ...timingOf(body), ...logsOf(body) };
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
			const gpu = isObject(body.output) && typeof body.output.gpu === "string" ? body.output.gpu.slice(0, 100) : "";
			return { ok: true, state: "completed", output: video, ...timing, ...(gpu ? { gpu } : {}) };
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
			return failure("bad_answer", `Status: unknown backend status ${body.status.slice(0, 40)}.`);
	}
}
