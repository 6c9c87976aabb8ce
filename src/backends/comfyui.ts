import type { UploadRef } from "../jobs/record";
import { bindInputFiles, FillError } from "../models/fill";
import { verifiedReadCondition } from "../storage/input-check";
import type { ComfyuiConfig } from "./config";
import { type BackendResult, failure, httpFailure, networkFailure } from "./failure";
import { isObject, readJson } from "./http";
import { streamToR2 } from "./stream-to-r2";
import type { GpuBackend, GpuJobInput, HealthReport, JobContext, JobRun, PollStatus } from "./types";
import { buildWorkflow, TemplateError, templateFor, templateParams } from "./workflows";

export const DEFAULT_COMFYUI_TIMEOUT_MS = 15_000;
/** Downloading the finished video may take a while; it has its own, longer limit. */
const VIEW_TIMEOUT_MS = 10 * 60_000;
/** One client id for all our prompts: we follow by `/history`, not by websocket. */
const CLIENT_ID = "reelgate";

/** What the adapter needs of the Worker: the bucket it reads inputs from and stores videos in, and their cap. */
export interface ComfyuiDeps {
	bucket: R2Bucket;
	maxVideoBytes: number;
}

type Json = Record<string, unknown>;

/** The first video file in a history entry's outputs (`SaveVideo`: images + animated; VHS: gifs; newer: videos). */
export function findVideo(outputs: unknown): { filename: string; subfolder: string; type: string } | undefined {
	if (!isObject(outputs)) return undefined;
	for (const node of Object.values(outputs)) {
		if (!isObject(node)) continue;
		for (const key of ["videos", "gifs", "images"]) {
			const files = node[key];
			if (!Array.isArray(files)) continue;
			for (const f of files) {
				if (!isObject(f) || typeof f.filename !== "string" || f.type === "temp") continue;
				if (/\.(mp4|webm|mkv|mov)$/i.test(f.filename)) {
					return { filename: f.filename, subfolder: String(f.subfolder ?? ""), type: String(f.type ?? "output") };
				}
			}
		}
	}
	return undefined;
}

/** The `execution_error` of a failed history entry, as a job error (the traceback stays out). */
function historyError(status: Json): { code: string; message: string } {
	const messages = Array.isArray(status.messages) ? status.messages : [];
	for (const m of messages) {
		if (Array.isArray(m) && m[0] === "execution_error" && isObject(m[1])) {
			const e = m[1];
			const where = typeof e.node_type === "string" ? ` in ${e.node_type}` : "";
			return { code: "inference_failed", message: `${String(e.exception_message ?? "error")}${where}`.slice(0, 500) };
		}
		if (Array.isArray(m) && m[0] === "execution_interrupted") {
			return { code: "canceled_by_backend", message: "ComfyUI interrupted the prompt." };
		}
	}
	return { code: "inference_failed", message: "ComfyUI reported an error." };
}

/** Milliseconds between execution_start and execution_success/error in the history messages, when present. */
function executionMs(status: Json): number | undefined {
	const messages = Array.isArray(status.messages) ? status.messages : [];
	let start: number | undefined;
	let end: number | undefined;
	for (const m of messages) {
		if (!Array.isArray(m) || !isObject(m[1]) || typeof m[1].timestamp !== "number") continue;
		if (m[0] === "execution_start") start = m[1].timestamp;
		if (m[0] === "execution_success" || m[0] === "execution_error") end = m[1].timestamp;
	}
	return start !== undefined && end !== undefined && end >= start ? end - start : undefined;
}

/** A 400 from `/prompt`: ComfyUI's validation error, summarised (node errors name the node and the input). */
function promptRefusal(body: unknown): string {
	if (!isObject(body)) return "ComfyUI refused the workflow.";
	const error = isObject(body.error) ? body.error : {};
	const parts = [String(error.message ?? "ComfyUI refused the workflow")];
	if (isObject(body.node_errors)) {
		for (const [id, ne] of Object.entries(body.node_errors).slice(0, 3)) {
			const first = isObject(ne) && Array.isArray(ne.errors) && isObject(ne.errors[0]) ? ne.errors[0] : {};
			const cls = isObject(ne) ? String(ne.class_type ?? "") : "";
			parts.push(`node ${id} ${cls}: ${String(first.details ?? first.message ?? "invalid")}`);
		}
	}
	return parts.join("; ").slice(0, 500);
}

/** A submission's prompt id: a UUID-shaped digest of the job and the submission's number. */
async function submissionPromptId(jobId: string, submission: number): Promise<string> {
	const digest = new Uint8Array(
		await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${jobId}/submission/${submission}`)),
	);
	const hex = [...digest.subarray(0, 16)].map((b) => b.toString(16).padStart(2, "0")).join("");
	return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/**
 * The `comfyui` kind: a bare ComfyUI server (a vast.ai ComfyUI template behind its tunnel, a pod). The Worker does
 * what the GPU worker would: uploads the inputs from R2, queues the model's workflow (gpu-worker/workflows, the
 * same templates) with the parameters injected, follows it through `/history` (and `/queue` while it is empty),
 * and streams the finished video from `/view` into R2. Cancel interrupts the prompt and removes it from the queue.
 * ComfyUI's HTTP API: https://github.com/Comfy-Org/ComfyUI/blob/v0.8.0/server.py
 */
export class ComfyuiBackend implements GpuBackend {
	readonly kind = "comfyui" as const;
	readonly #base: string;
	readonly #token?: string;
	readonly #timeoutMs: number;
	readonly #deps: ComfyuiDeps;

	constructor(config: Pick<ComfyuiConfig, "url" | "token" | "timeout_ms">, deps: ComfyuiDeps) {
		this.#base = config.url.replace(/\/+$/, "");
		this.#token = config.token ?? undefined;
		this.#timeoutMs = config.timeout_ms ?? DEFAULT_COMFYUI_TIMEOUT_MS;
		this.#deps = deps;
	}

	forJob(job: JobContext): JobRun {
		return {
			submit: (input) => this.#submit(job, input),
			poll: (remoteId) => this.#poll(job, remoteId),
			cancel: (remoteId) => this.#cancel(remoteId),
		};
	}

	#fetch(path: string, init: RequestInit = {}, signal = AbortSignal.timeout(this.#timeoutMs)): Promise<Response> {
		const headers = new Headers(init.headers);
		if (this.#token) headers.set("authorization", `Bearer ${this.#token}`);
		return fetch(`${this.#base}${path}`, { ...init, headers, signal });
	}

	/**
	 * A GET of a large body: its answer must start within the call timeout, like any call (a stalled ComfyUI must
	 * not hold the job's step for the whole download budget); the body then has `totalMs` to arrive.
	 */
	async #fetchLarge(path: string, totalMs: number): Promise<Response> {
		const answered = new AbortController();
		const waiting = setTimeout(
			() => answered.abort(new DOMException("No answer within the call timeout.", "TimeoutError")),
			this.#timeoutMs,
		);
		try {
			return await this.#fetch(path, {}, AbortSignal.any([answered.signal, AbortSignal.timeout(totalMs)]));
		} finally {
			clearTimeout(waiting);
		}
	}

	#postJson(path: string, body: unknown): Promise<Response> {
		return this.#fetch(path, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify(body),
		});
	}

	/** `POST /upload/image` (any file type) of an input read from R2; returns the name ComfyUI stored. */
	async #upload(ref: UploadRef, field: string, name: string): Promise<BackendResult<{ name: string }>> {
		const contentType = ref.content_type;
		const object = await this.#deps.bucket.get(ref.object_key, verifiedReadCondition(ref));
		if (!object) return failure("input_missing", "Submit: an input file is missing from storage.");
		if (!("body" in object)) {
			return failure("input_changed", `${field}: the stored bytes are not the ones verified at upload.`);
		}
		const form = new FormData();
		form.set("image", new File([await object.arrayBuffer()], name, { type: contentType }));
		form.set("overwrite", "true");
		const res = await this.#fetch("/upload/image", { method: "POST", body: form });
		if (!res.ok) {
			await res.body?.cancel();
			return httpFailure(res, "Upload");
		}
		const body = await readJson(res);
		const stored = isObject(body) && typeof body.name === "string" ? body.name : name;
		const sub = isObject(body) && typeof body.subfolder === "string" && body.subfolder ? `${body.subfolder}/` : "";
		return { ok: true, name: `${sub}${stored}` };
	}

	/**
	 * Uploads the inputs and queues the workflow under a prompt id of our choosing (which `poll` follows). The id is
	 * the submission's own, so when an earlier try's answer was lost (the prompt queued, the answer never came), the
	 * retry finds that prompt and follows it instead of running the job twice on the GPU.
	 */
	async #submit(job: JobContext, input: GpuJobInput): Promise<BackendResult<{ remoteId: string }>> {
		if (input.workflow?.loras?.length) {
			// A bare ComfyUI cannot fetch a model file by URL; job creation refuses this, a failover may not.
			return failure("rejected", "ComfyUI cannot fetch LoRAs by URL: the job needs a GPU worker backend.");
		}
		const template = input.workflow ? undefined : templateFor(input.model);
		if (!input.workflow && !template) return failure("rejected", `ComfyUI has no workflow for ${input.model}.`);
		try {
			const promptId = await submissionPromptId(job.id, job.submission);
			const known = await this.#knows(promptId);
			if (!known.ok) return known;
			if (known.known) return { ok: true, remoteId: promptId };
			const ext = (ct: string) => (ct.split("/")[1] ?? "bin").replace("mpeg", "mp3").replace("x-wav", "wav");
			const names: { image?: string; audio?: string } = {};
			for (const kind of ["image", "audio"] as const) {
				const ref = job.inputs[kind];
				if (!ref) continue;
				const up = await this.#upload(ref, `inputs.${kind}`, `${job.id}-${kind}.${ext(ref.content_type)}`);
				if (!up.ok) return up;
				names[kind] = up.name;
			}
			let prompt: unknown;
			if (input.workflow) {
				prompt = bindInputFiles(input.workflow, names);
			} else if (template && names.image) {
				const files = { image: names.image, audio: names.audio };
				prompt = buildWorkflow(template, templateParams(template, input.params, files, `video/${job.id}`));
			} else {
				return failure("rejected", "Submit: the job has no image for the workflow.");
			}
			const res = await this.#postJson("/prompt", { prompt, client_id: CLIENT_ID, prompt_id: promptId });
			if (res.status === 400) return failure("rejected", `Submit: ${promptRefusal(await readJson(res))}`);
			if (!res.ok) {
				await res.body?.cancel();
				return httpFailure(res, "Submit");
			}
			const body = await readJson(res);
			const id = isObject(body) && typeof body.prompt_id === "string" ? body.prompt_id : promptId;
			return { ok: true, remoteId: id };
		} catch (err) {
			if (err instanceof TemplateError || err instanceof FillError) return failure("rejected", err.message);
			return networkFailure(err, "Submit");
		}
	}

	/** The prompt's `/history/{id}` entry, once it has finished; undefined while queued or running (or unknown). */
	async #historyEntry(promptId: string, what: string): Promise<BackendResult<{ entry: Json | undefined }>> {
		const res = await this.#fetch(`/history/${encodeURIComponent(promptId)}`);
		if (!res.ok) {
			await res.body?.cancel();
			return httpFailure(res, what);
		}
		const history = await readJson(res);
		const entry = isObject(history) ? history[promptId] : undefined;
		return { ok: true, entry: isObject(entry) ? entry : undefined };
	}

	/** Where `/queue` lists the prompt: running, pending (`queued`), or nowhere (null). */
	async #queueState(promptId: string, what: string): Promise<BackendResult<{ state: "running" | "queued" | null }>> {
		const res = await this.#fetch("/queue");
		if (!res.ok) {
			await res.body?.cancel();
			return httpFailure(res, what);
		}
		const queue = await readJson(res);
		const listed = (key: string) =>
			isObject(queue) && Array.isArray(queue[key]) && queue[key].some((e) => Array.isArray(e) && e[1] === promptId);
		return { ok: true, state: listed("queue_running") ? "running" : listed("queue_pending") ? "queued" : null };
	}

	/** Whether ComfyUI has the prompt: in its history, running or pending. Unsure (an error) is not "no". */
	async #knows(promptId: string): Promise<BackendResult<{ known: boolean }>> {
		const history = await this.#historyEntry(promptId, "Submit");
		if (!history.ok) return history;
		if (history.entry) return { ok: true, known: true };
		const queue = await this.#queueState(promptId, "Submit");
		return queue.ok ? { ok: true, known: queue.state !== null } : queue;
	}

	/** `/history/{id}` when done; while it is `{}`, `/queue` tells queued from running (neither: lost). */
	async #poll(job: JobContext, remoteId: string): Promise<BackendResult<PollStatus>> {
		try {
			const history = await this.#historyEntry(remoteId, "Status");
			if (!history.ok) return history;
			// Awaited, so a failed download (no answer on /view) is this try's to turn into a transient failure.
			if (history.entry) return await this.#finished(job, remoteId, history.entry);
			const queue = await this.#queueState(remoteId, "Queue");
			if (!queue.ok) return queue;
			if (queue.state) return { ok: true, state: queue.state };
			// Not queued, not in the history: ComfyUI restarted or evicted it. Check the history once more (a race
			// with the prompt finishing between the two calls).
			const again = await this.#historyEntry(remoteId, "Status");
			const entry = again.ok ? again.entry : undefined;
			return entry ? await this.#finished(job, remoteId, entry) : { ok: true, state: "lost" };
		} catch (err) {
			return networkFailure(err, "Status");
		}
	}

	async #finished(job: JobContext, remoteId: string, entry: Json): Promise<BackendResult<PollStatus>> {
		const status = isObject(entry.status) ? entry.status : {};
		const ms = executionMs(status);
		if (status.status_str !== "success")
			return { ok: true, state: "failed", error: historyError(status), executionMs: ms };
		const file = findVideo(entry.outputs);
		if (!file) {
			return {
				ok: true,
				state: "failed",
				error: { code: "output_missing", message: "ComfyUI finished without a video output." },
				executionMs: ms,
			};
		}
		const query = new URLSearchParams({ filename: file.filename, subfolder: file.subfolder, type: file.type });
		const view = await this.#fetchLarge(`/view?${query}`, VIEW_TIMEOUT_MS);
		if (!view.ok || !view.body) {
			await view.body?.cancel();
			return httpFailure(view, "Output");
		}
		const length = Number(view.headers.get("content-length") ?? Number.NaN);
		const stored = await streamToR2(
			this.#deps.bucket,
			job.videoKey,
			view.body,
			Number.isFinite(length) ? length : null,
			this.#deps.maxVideoBytes,
		);
		if (!stored.ok) return { ok: true, state: "failed", error: { code: "output_invalid", message: stored.message } };
		// Tidy up: the prompt's history entry is no longer needed (best effort).
		await this.#postJson("/history", { delete: [remoteId] })
			.then((r) => r.body?.cancel())
			.catch(() => undefined);
		return {
			ok: true,
			state: "completed",
			output: { content_type: "video/mp4", size: stored.size, sha256: stored.sha256 },
			executionMs: ms,
		};
	}

	/** Removes the prompt from the queue and interrupts it if it is running. */
	async #cancel(remoteId: string): Promise<BackendResult<Record<never, never>>> {
		try {
			const del = await this.#postJson("/queue", { delete: [remoteId] });
			await del.body?.cancel();
			const res = await this.#postJson("/interrupt", { prompt_id: remoteId });
			await res.body?.cancel();
			return res.ok ? { ok: true } : httpFailure(res, "Cancel");
		} catch (err) {
			return networkFailure(err, "Cancel");
		}
	}

	/** `/system_stats` (GPU, VRAM, version) and the queue depth from `GET /prompt`. */
	async health(): Promise<HealthReport> {
		const started = Date.now();
		try {
			const res = await this.#fetch("/system_stats");
			const latency_ms = Date.now() - started;
			if (!res.ok) {
				await res.body?.cancel();
				return { reachable: false, latency_ms, details: { status: res.status } };
			}
			const stats = await readJson(res);
			const q = await this.#fetch("/prompt");
			const queue = q.ok ? await readJson(q) : undefined;
			const system = isObject(stats) && isObject(stats.system) ? stats.system : {};
			const devices = isObject(stats) && Array.isArray(stats.devices) ? stats.devices.filter(isObject) : [];
			return {
				reachable: true,
				latency_ms,
				details: {
					comfyui_version: system.comfyui_version,
					gpus: devices.map((d) => ({ name: d.name, vram_total: d.vram_total, vram_free: d.vram_free })),
					queue_depth: isObject(queue) && isObject(queue.exec_info) ? (queue.exec_info.queue_remaining ?? null) : null,
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
