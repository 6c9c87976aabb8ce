// The Reelgate API client: uploads, jobs, live job updates and video downloads over `fetch`, so it runs in
// Node ≥ 22, browsers and Workers alike (sdk/node.ts adds what needs Node: file paths, the environment).
import { JobFailedError, networkCause, ReelgateConnectionError, ReelgateError } from "./errors.ts";
import { classifyRunFile, type FileInput, type ResolvedFile, type RunFile, resolveFile } from "./files.ts";
import { checkInput, type InputIssue } from "./model-check.ts";
import { DEFAULT_RETRY, fetchWithRetries, type RetryOptions, sleep } from "./retry.ts";
import { readSse, SseParser } from "./sse.ts";
import {
	type CatalogModel,
	type CreatedUpload,
	type CreateJobBody,
	type Job,
	type JobEvent,
	type JobList,
	type JobStatus,
	type Model,
	type MultipartPart,
	TERMINAL_STATUSES,
	type Upload,
} from "./types.ts";
import { countingBody, sha256Hex, sizeOf, slice, toBytesOrBlob, type UploadData } from "./upload-body.ts";

export interface ReelgateOptions {
	/** The API origin, e.g. `http://127.0.0.1:8787`. */
	baseUrl: string;
	apiKey: string;
	/** A fetch to use instead of the global one (tests, proxies, instrumentation). */
	fetch?: typeof fetch;
	retry?: Partial<RetryOptions>;
	/**
	 * The message of a ReelgateConnectionError (the API gave no answer), given the network error. The default names
	 * the URL; sdk/node.ts also says where the URL came from (flag, REELGATE_URL, the running `npm start`).
	 */
	describeUnreachable?: (err: unknown) => string;
}

/** The job's own parameters of a `run`, with each file input as a file, a path (Node), an upload id or a URL. */
export type RunInput = Omit<CreateJobBody["input"], "image" | "audio"> & { image: RunFile; audio?: RunFile };

/** One step of a `run`: bytes of an input uploaded so far, or an update of the job. */
export type RunProgress =
	| { stage: "upload"; input: "image" | "audio"; filename: string; sent: number; total: number }
	| { stage: "job"; job: Job; event: JobEvent };

export interface RunOptions {
	onProgress?: (progress: RunProgress) => void;
	/** Same key, same job: a `run` retried with it never starts a second one. Random by default. */
	idempotencyKey?: string;
	webhook?: CreateJobBody["webhook"];
	/** A backend to run on, by name (default: the router picks). */
	backend?: string;
	signal?: AbortSignal;
	/** Give up waiting (TimeoutError) after this long; the job itself goes on. */
	timeoutMs?: number;
}

/** A succeeded job, with its video one call away. */
export type FinishedJob = Job & {
	/**
	 * Streams the video into `dest`: a WritableStream, or in Node (sdk/node.ts) a file path. Resolves with the
	 * byte count.
	 */
	download(dest: WritableStream<Uint8Array> | string): Promise<number>;
};

/** Files up to this size go in one request (`POST /v1/uploads/inline`, the server's own cap); larger ones by signed URLs. */
export const INLINE_UPLOAD_MAX_BYTES = 8 * 1024 * 1024;

export interface UploadFileOptions {
	filename: string;
	contentType: string;
	/** Hex SHA-256 of the bytes; computed when omitted, so the server can verify what it stored. */
	sha256?: string;
	/** Bytes sent so far, and the total. */
	onProgress?: (sent: number, total: number) => void;
	signal?: AbortSignal;
}

export interface WaitForJobOptions {
	onEvent?: (event: JobEvent) => void;
	signal?: AbortSignal;
	/** Give up (rejecting with a TimeoutError) after this long. */
	timeoutMs?: number;
	/** How often to poll when the event stream is unavailable. Default 1500 ms. */
	pollIntervalMs?: number;
}

export interface ListJobsOptions {
	status?: JobStatus;
	limit?: number;
	cursor?: string;
}

/** A byte range of the video: `{ start, end? }` (inclusive, as in HTTP) or a raw `Range` header value. */
export type VideoRange = { start: number; end?: number } | string;

interface RequestOptions {
	body?: unknown;
	headers?: Record<string, string>;
	signal?: AbortSignal;
}

const isTerminal = (status: JobStatus) => TERMINAL_STATUSES.includes(status);

/** How many times a broken event stream is resumed (with Last-Event-ID) before falling back to polling. */
const STREAM_RESUMES = 3;

export class Reelgate {
	readonly baseUrl: string;
	#apiKey: string;
	#fetch: typeof fetch;
	#retry: RetryOptions;
	#describeUnreachable: (err: unknown) => string;

	constructor(options: ReelgateOptions) {
		this.baseUrl = options.baseUrl.replace(/\/+$/, "");
		this.#apiKey = options.apiKey;
		// Bound: a detached global fetch throws "Illegal invocation" in browsers and Workers.
		this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
		this.#retry = { ...DEFAULT_RETRY, ...options.retry };
		this.#describeUnreachable =
			options.describeUnreachable ??
			((err) =>
				`Cannot reach the Reelgate API at ${this.baseUrl} (${networkCause(err)}). Check the base URL and that the API runs there.`);
	}

	/**
	 * Uploads, starts and follows a job, and resolves with it once its video is ready: the whole flow in one call.
	 * Each file input is uploaded first (an upload id or a URL is passed as is); the job is created with an
	 * idempotency key and followed by its event stream, falling back to polling. A job that fails or is canceled
	 * rejects with JobFailedError (its `job` says why).
	 */
	async run(model: Model, input: RunInput, options: RunOptions = {}): Promise<FinishedJob> {
		const { image, audio, ...params } = input;
		// Checked against the catalog first: a refused input must not cost an upload.
		await this.checkRunnable(model, input, options.signal);
		const report = options.onProgress ?? (() => {});
		const refs: { image?: string; audio?: string } = {};
		for (const [name, file] of [
			["image", image],
			["audio", audio],
		] as const) {
			if (file === undefined) continue;
			const how = classifyRunFile(file);
			if (how.kind === "reference") refs[name] = how.value;
			else {
				const upload = await this.upload(how.kind === "path" ? how.path : how.file, {
					signal: options.signal,
					onProgress: (sent, total, filename) => report({ stage: "upload", input: name, filename, sent, total }),
				});
				refs[name] = upload.id;
			}
		}
		const created = await this.createJob(
			{
				model,
				input: { ...params, image: refs.image ?? "", ...(refs.audio ? { audio: refs.audio } : {}) },
				...(options.webhook ? { webhook: options.webhook } : {}),
				...(options.backend ? { backend: options.backend } : {}),
			},
			{ idempotencyKey: options.idempotencyKey ?? crypto.randomUUID(), signal: options.signal },
		);
		const job = await this.waitForJob(created.id, {
			signal: options.signal,
			timeoutMs: options.timeoutMs,
			onEvent: (event) => report({ stage: "job", job: event.job, event }),
		});
		if (job.status !== "succeeded") throw new JobFailedError(job);
		return this.#finished(job);
	}

	/**
	 * Uploads one file (bytes, a Blob or File, bytes with a name and type, or in Node a path) and returns it `ready`.
	 * The media type comes from the caller, the Blob, the file name or the bytes.
	 */
	async upload(
		file: FileInput | string,
		options: { onProgress?: (sent: number, total: number, filename: string) => void; signal?: AbortSignal } = {},
	): Promise<Upload> {
		const resolved = typeof file === "string" ? await this.openPath(file) : await resolveFile(file, "upload");
		return this.uploadFile(resolved.data, {
			filename: resolved.filename,
			contentType: resolved.contentType,
			sha256: resolved.sha256,
			signal: options.signal,
			onProgress: (sent, total) => options.onProgress?.(sent, total, resolved.filename),
		});
	}

	/** The models a job can name, with their inputs, parameters (JSON Schema), limits and availability. */
	async listModels(options: { signal?: AbortSignal } = {}): Promise<CatalogModel[]> {
		return (await this.#json<{ data: CatalogModel[] }>("GET", "/v1/models", options)).data;
	}

	getModel(id: string, options: { signal?: AbortSignal } = {}): Promise<CatalogModel> {
		return this.#json<CatalogModel>("GET", `/v1/models/${encodeURIComponent(id)}`, options);
	}

	/**
	 * Throws what the API would answer for this model and input, without sending the job: an unknown model or an
	 * input outside the model's schema (400, every field in `errors`), a model no enabled backend serves (422
	 * `model_unavailable`). A model whose backends are only unhealthy passes: the API accepts the job and it waits.
	 * A server without a catalog passes everything (the job's create checks again anyway).
	 */
	async checkRunnable(model: string, input: Record<string, unknown>, signal?: AbortSignal): Promise<void> {
		let entry: CatalogModel;
		try {
			entry = await this.getModel(model, { signal });
		} catch (err) {
			if (!(err instanceof ReelgateError) || err.status !== 404) throw err;
			const known = await this.listModels({ signal }).catch(() => null);
			if (known === null) return;
			const ids = known.map((m) => m.id).join(", ");
			throw refusal([{ field: "model", message: `there is no model ${JSON.stringify(model)} (there are ${ids})` }]);
		}
		const issues = checkInput(entry, input);
		if (issues.length) throw refusal(issues);
		// A server older than `accepting_jobs` refused whatever was not `available`.
		const accepted = entry.accepting_jobs ?? entry.available;
		if (!accepted) {
			const why = entry.unavailable_reason ?? "no enabled backend serves it";
			throw new ReelgateError({
				type: "https://reelgate.dev/problems/model-unavailable",
				title: "Model unavailable",
				status: 422,
				code: "model_unavailable",
				detail: `${entry.id} is not available: ${why}`,
				errors: [{ path: "json.model", message: why }],
			});
		}
	}

	/** Any API call by method and path, for routes without a method of their own; the answer's JSON. */
	request<T = unknown>(
		method: string,
		path: string,
		body?: unknown,
		options: { signal?: AbortSignal } = {},
	): Promise<T> {
		return this.#json<T>(method, path, { body, signal: options.signal });
	}

	/** A local file as an upload: needs Node (sdk/node.ts overrides this). */
	protected openPath(path: string): Promise<ResolvedFile> {
		return Promise.reject(
			new TypeError(`${path}: file paths need Node (import from sdk/node.ts); pass a Blob or bytes here.`),
		);
	}

	/** Writes a stream to a local file: needs Node (sdk/node.ts overrides this). */
	protected writePath(path: string, _body: ReadableStream<Uint8Array>): Promise<number> {
		return Promise.reject(new TypeError(`${path}: file paths need Node (import from sdk/node.ts).`));
	}

	/** The job with its `download` helper (not enumerable: the job's JSON stays the API's). */
	#finished(job: Job): FinishedJob {
		const download = async (dest: WritableStream<Uint8Array> | string) => {
			const body = await this.downloadVideo(job.id);
			if (typeof dest === "string") return this.writePath(dest, body);
			let bytes = 0;
			const counter = new TransformStream<Uint8Array, Uint8Array>({
				transform(chunk, controller) {
					bytes += chunk.byteLength;
					controller.enqueue(chunk);
				},
			});
			await body.pipeThrough(counter).pipeTo(dest);
			return bytes;
		};
		return Object.defineProperty(job, "download", { value: download, enumerable: false }) as FinishedJob;
	}

	/**
	 * Uploads a file and returns it `ready`. A small file (up to `INLINE_UPLOAD_MAX_BYTES`) goes in one request;
	 * otherwise (or on a server without that route) this creates the upload, PUTs the bytes (part by part when the
	 * server answers with a multipart target), then completes it so the server verifies size, type and SHA-256.
	 * Bytes this account already stored (same SHA-256) are not sent again: the server answers with that upload.
	 */
	async uploadFile(data: UploadData, options: UploadFileOptions): Promise<Upload> {
		const bytes = await toBytesOrBlob(data);
		const total = sizeOf(bytes);
		const sha256 = options.sha256 ?? (await sha256Hex(bytes));
		const report = (sent: number) => options.onProgress?.(sent, total);
		if (total > 0 && total <= INLINE_UPLOAD_MAX_BYTES) {
			const inline = await this.#uploadInline(bytes, sha256, options, report);
			if (inline) return inline;
		}
		const created = await this.#json<CreatedUpload>("POST", "/v1/uploads", {
			body: { filename: options.filename, content_type: options.contentType, size: total, sha256 },
			signal: options.signal,
		});
		if (created.status === "ready") {
			report(total);
			return created;
		}
		report(0);
		if (created.multipart?.parts.length) {
			await this.#putParts(bytes, created.multipart.part_size, created.multipart.parts, report, options.signal);
		} else {
			const target = created.upload;
			// The schema's inferred type leaves `url` optional (absent for multipart); a single PUT always has it.
			if (!target?.url) throw new Error("The upload response carries neither an upload URL nor parts.");
			await this.#put(target.url, target.headers, bytes, report, options.signal);
		}
		// The server tracks the stored parts itself: `complete` takes no body.
		return this.#json<Upload>("POST", `/v1/uploads/${created.id}/complete`, { signal: options.signal });
	}

	/** Starts a job. An idempotency key is always sent (a random one by default), so retries never duplicate it. */
	createJob(body: CreateJobBody, options: { idempotencyKey?: string; signal?: AbortSignal } = {}): Promise<Job> {
		return this.#json<Job>("POST", "/v1/jobs", {
			body,
			headers: { "idempotency-key": options.idempotencyKey ?? crypto.randomUUID() },
			signal: options.signal,
		});
	}

	getJob(id: string, options: { signal?: AbortSignal } = {}): Promise<Job> {
		return this.#json<Job>("GET", `/v1/jobs/${encodeURIComponent(id)}`, options);
	}

	listJobs(options: ListJobsOptions & { signal?: AbortSignal } = {}): Promise<JobList> {
		const query = new URLSearchParams();
		if (options.status) query.set("status", options.status);
		if (options.limit !== undefined) query.set("limit", String(options.limit));
		if (options.cursor) query.set("cursor", options.cursor);
		const qs = query.size ? `?${query}` : "";
		return this.#json<JobList>("GET", `/v1/jobs${qs}`, { signal: options.signal });
	}

	cancelJob(id: string, options: { signal?: AbortSignal } = {}): Promise<Job> {
		return this.#json<Job>("POST", `/v1/jobs/${encodeURIComponent(id)}/cancel`, options);
	}

	/**
	 * Resolves with the job once it is terminal (succeeded, failed or canceled: check `status`). Follows the
	 * event stream, resuming it with `Last-Event-ID` when it breaks; polls instead when the server has no
	 * stream (404/405) or it keeps breaking.
	 */
	async waitForJob(id: string, options: WaitForJobOptions = {}): Promise<Job> {
		const signals = [options.signal, options.timeoutMs ? AbortSignal.timeout(options.timeoutMs) : undefined];
		const signal = AbortSignal.any(signals.filter((s): s is AbortSignal => s !== undefined));
		const emit = options.onEvent ?? (() => {});
		const parser = new SseParser();
		for (let resumes = 0; resumes <= STREAM_RESUMES; resumes++) {
			const outcome = await this.#followStream(id, parser, emit, signal);
			if (outcome.kind === "done") return outcome.job;
			if (outcome.kind === "unsupported") break;
			signal.throwIfAborted();
			// The stream ended early: the job may have finished meanwhile, in which case there is nothing to resume.
			const job = await this.getJob(id, { signal });
			if (isTerminal(job.status)) return job;
			await sleep(parser.retryMs ?? 1000, signal);
		}
		return this.#poll(id, emit, signal, options.pollIntervalMs ?? 1500);
	}

	/** The finished video's bytes, streamed. With `range`, part of it (206). */
	async downloadVideo(
		id: string,
		options: { range?: VideoRange; signal?: AbortSignal } = {},
	): Promise<ReadableStream<Uint8Array>> {
		const headers: Record<string, string> = {};
		if (options.range !== undefined) {
			headers.range =
				typeof options.range === "string" ? options.range : `bytes=${options.range.start}-${options.range.end ?? ""}`;
		}
		const res = await this.#send("GET", `/v1/jobs/${encodeURIComponent(id)}/video`, {
			headers,
			signal: options.signal,
		});
		if (!res.ok) throw await ReelgateError.fromResponse(res);
		if (!res.body) throw new Error("The video response has no body.");
		return res.body;
	}

	async #followStream(
		id: string,
		parser: SseParser,
		emit: (e: JobEvent) => void,
		signal: AbortSignal,
	): Promise<{ kind: "done"; job: Job } | { kind: "unsupported" } | { kind: "broken" }> {
		const headers: Record<string, string> = { accept: "text/event-stream" };
		if (parser.lastEventId) headers["last-event-id"] = parser.lastEventId;
		let res: Response;
		try {
			res = await this.#fetch(this.#url(`/v1/jobs/${encodeURIComponent(id)}/events`), {
				headers: { ...this.#auth(), ...headers },
				signal,
			});
		} catch (err) {
			if (signal.aborted) throw err;
			return { kind: "broken" };
		}
		if (res.status === 404 || res.status === 405) {
			// 404 is also "no such job": polling then reports that as a ReelgateError.
			await res.body?.cancel();
			return { kind: "unsupported" };
		}
		if (!res.ok) {
			if (res.status >= 500 || res.status === 429) return { kind: "broken" };
			throw await ReelgateError.fromResponse(res);
		}
		if (!res.body || !(res.headers.get("content-type") ?? "").includes("text/event-stream")) {
			await res.body?.cancel();
			return { kind: "unsupported" };
		}
		try {
			for await (const message of readSse(res.body, parser)) {
				const job = JSON.parse(message.data) as Job;
				emit({ type: message.event, job, id: message.id || undefined, source: "stream" });
				if (isTerminal(job.status)) return { kind: "done", job };
			}
		} catch (err) {
			if (signal.aborted) throw err;
		}
		return { kind: "broken" };
	}

	async #poll(id: string, emit: (e: JobEvent) => void, signal: AbortSignal, intervalMs: number): Promise<Job> {
		let last: Job | undefined;
		for (;;) {
			const job = await this.getJob(id, { signal });
			if (!last || last.status !== job.status) emit({ type: "status", job, source: "poll" });
			else if (JSON.stringify(last.progress) !== JSON.stringify(job.progress))
				emit({ type: "progress", job, source: "poll" });
			if (isTerminal(job.status)) return job;
			last = job;
			await sleep(intervalMs, signal);
		}
	}

	async #put(
		url: string,
		headers: Record<string, string>,
		data: Uint8Array | Blob,
		onSent: (bytes: number) => void,
		signal?: AbortSignal,
	): Promise<Response> {
		// The body is rebuilt per attempt: a stream consumed by a failed attempt cannot be sent again.
		const res = await this.#reachable(
			// The origin only: a signed URL's query is a credential.
			new URL(url).origin,
			fetchWithRetries(
				() => {
					const { body, init } = countingBody(data, onSent);
					return this.#fetch(url, {
						...init,
						method: "PUT",
						headers: { "content-length": String(sizeOf(data)), ...headers },
						body,
						signal,
					});
				},
				this.#retry,
				signal,
			),
		);
		if (!res.ok) throw await ReelgateError.fromResponse(res);
		onSent(sizeOf(data));
		return res;
	}

	/**
	 * A small file in one request (`POST /v1/uploads/inline`): answered ready, or by the upload that already has these
	 * bytes. Null when the server has no such route or takes less in one request (404, 405, 413): the caller then
	 * uses signed URLs.
	 */
	async #uploadInline(
		data: Uint8Array | Blob,
		sha256: string,
		options: UploadFileOptions,
		report: (sent: number) => void,
	): Promise<Upload | null> {
		const query = new URLSearchParams({ filename: options.filename, sha256 });
		const url = this.#url(`/v1/uploads/inline?${query}`);
		report(0);
		const res = await this.#reachable(
			this.baseUrl,
			fetchWithRetries(
				() => {
					const { body, init } = countingBody(data, report);
					return this.#fetch(url, {
						...init,
						method: "POST",
						headers: {
							...this.#auth(),
							accept: "application/json",
							"content-type": options.contentType,
							"content-length": String(sizeOf(data)),
						},
						body,
						signal: options.signal,
					});
				},
				this.#retry,
				options.signal,
			),
		);
		if (res.status === 404 || res.status === 405 || res.status === 413) {
			await res.body?.cancel();
			return null;
		}
		if (!res.ok) throw await ReelgateError.fromResponse(res);
		report(sizeOf(data));
		return (await res.json()) as Upload;
	}

	/** PUTs each listed part (all of them at create; the missing ones when resuming), in order. */
	async #putParts(
		data: Uint8Array | Blob,
		partSize: number,
		parts: MultipartPart[],
		report: (sent: number) => void,
		signal?: AbortSignal,
	): Promise<void> {
		let done = 0;
		for (const part of parts) {
			const start = (part.part_number - 1) * partSize;
			const before = done;
			await this.#put(
				part.url,
				part.headers,
				slice(data, start, start + part.size),
				(sent) => report(before + sent),
				signal,
			);
			done += part.size;
		}
	}

	async #json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
		const res = await this.#send(method, path, options);
		if (!res.ok) throw await ReelgateError.fromResponse(res);
		return (await res.json()) as T;
	}

	#send(method: string, path: string, options: RequestOptions): Promise<Response> {
		const headers: Record<string, string> = { ...this.#auth(), accept: "application/json", ...options.headers };
		let body: string | undefined;
		if (options.body !== undefined) {
			headers["content-type"] = "application/json";
			body = JSON.stringify(options.body);
		}
		return this.#reachable(
			this.baseUrl,
			fetchWithRetries(
				() => this.#fetch(this.#url(path), { method, headers, body, signal: options.signal }),
				this.#retry,
				options.signal,
			),
		);
	}

	/** A request that got no answer at all becomes a ReelgateConnectionError that says where it went; an abort stays. */
	async #reachable(target: string, sent: Promise<Response>): Promise<Response> {
		try {
			return await sent;
		} catch (err) {
			if (!(err instanceof TypeError)) throw err;
			const message =
				target === this.baseUrl
					? this.#describeUnreachable(err)
					: `Cannot reach the upload storage at ${target} (${networkCause(err)}).`;
			throw new ReelgateConnectionError(message, target, err);
		}
	}

	#url(path: string): string {
		return `${this.baseUrl}${path}`;
	}

	#auth(): Record<string, string> {
		return { authorization: `Bearer ${this.#apiKey}` };
	}
}

/** Issues found before sending, as the 400 problem the API would answer with. */
function refusal(issues: InputIssue[]): ReelgateError {
	const detail = `${issues.map((i) => `${i.field}: ${i.message}`).join("; ")}.`;
	return new ReelgateError({
		type: "https://reelgate.dev/problems/invalid-request",
		title: "Invalid request",
		status: 400,
		code: "invalid_request",
		detail,
		errors: issues.map((i) => ({ path: i.field === "model" ? "json.model" : `json.${i.field}`, message: i.message })),
	});
}
