// Calls to the Reelgate API from the page: JSON requests, uploads with progress, and watching a job.
import { SseParser } from "./sse.js";

const TERMINAL = new Set(["succeeded", "failed", "canceled"]);
const POLL_MS = 1500;

export const isTerminal = (status) => TERMINAL.has(status);

/** A failed call, carrying the RFC 9457 problem so the page can show its `detail` and each field's message. */
export class ApiError extends Error {
	constructor(problem) {
		super(problem.detail || problem.title || `HTTP ${problem.status}`);
		this.problem = problem;
	}
}

async function problemOf(res) {
	const text = await res.text().catch(() => "");
	try {
		const p = JSON.parse(text);
		if (p && typeof p.detail === "string") return p;
	} catch {
		// Not a problem document: described below.
	}
	return {
		status: res.status,
		title: res.statusText,
		detail: text.slice(0, 300) || `The server answered ${res.status}.`,
	};
}

export function createApi(getKey) {
	const auth = () => ({ authorization: `Bearer ${getKey()}` });

	async function request(method, path, body, extraHeaders = {}) {
		const headers = { ...auth(), accept: "application/json", ...extraHeaders };
		if (body !== undefined) headers["content-type"] = "application/json";
		let res;
		try {
			res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
		} catch {
			throw new ApiError({ detail: "The API did not answer: is the server still running?" });
		}
		if (!res.ok) throw new ApiError(await problemOf(res));
		return res.json();
	}

	/** PUTs a Blob with XHR, the only browser API that reports upload progress. */
	function putWithProgress(url, headers, blob, onProgress) {
		return new Promise((resolve, reject) => {
			const xhr = new XMLHttpRequest();
			xhr.open("PUT", url);
			for (const [k, v] of Object.entries(headers ?? {})) xhr.setRequestHeader(k, v);
			xhr.upload.addEventListener("progress", (e) => {
				if (e.lengthComputable) onProgress(e.loaded);
			});
			xhr.addEventListener("load", () => {
				if (xhr.status >= 200 && xhr.status < 300) return resolve();
				let problem;
				try {
					problem = JSON.parse(xhr.responseText);
				} catch {
					problem = { status: xhr.status, detail: `The storage refused the file (${xhr.status}).` };
				}
				reject(new ApiError(problem));
			});
			xhr.addEventListener("error", () => reject(new ApiError({ detail: "The upload failed: network error." })));
			xhr.send(blob);
		});
	}

	/**
	 * Uploads a File and returns the ready upload. Large files get a `multipart` target from the server: each
	 * part n (bytes [(n-1)·part_size, n·part_size)) is PUT to its own URL; `complete` then assembles them.
	 */
	async function uploadFile(file, onProgress) {
		const created = await request("POST", "/v1/uploads", {
			filename: file.name || "upload",
			content_type: file.type || "application/octet-stream",
			size: file.size,
		});
		onProgress(0, file.size);
		if (created.status === "ready") {
			onProgress(file.size, file.size);
			return created;
		}
		if (created.multipart?.parts?.length) {
			let done = 0;
			for (const part of created.multipart.parts) {
				const start = (part.part_number - 1) * created.multipart.part_size;
				const before = done;
				await putWithProgress(part.url, part.headers, file.slice(start, start + part.size), (n) =>
					onProgress(before + n, file.size),
				);
				done += part.size;
			}
		} else {
			await putWithProgress(created.upload.url, created.upload.headers, file, (n) => onProgress(n, file.size));
		}
		onProgress(file.size, file.size);
		return request("POST", `/v1/uploads/${created.id}/complete`);
	}

	/** Follows the job's event stream; resolves "unsupported" (404/405) or "broken", or the terminal job. */
	async function followStream(id, onJob, signal) {
		let res;
		try {
			res = await fetch(`/v1/jobs/${encodeURIComponent(id)}/events`, {
				headers: { ...auth(), accept: "text/event-stream" },
				signal,
			});
		} catch {
			return "broken";
		}
		if (!res.ok || !(res.headers.get("content-type") ?? "").includes("text/event-stream") || !res.body) {
			await res.body?.cancel().catch(() => {});
			if (res.status === 401 || res.status === 403) throw new ApiError(await problemOf(res));
			return res.status === 404 || res.status === 405 ? "unsupported" : "broken";
		}
		const parser = new SseParser();
		const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
		try {
			for (;;) {
				const { done, value } = await reader.read();
				if (done) return "broken";
				for (const message of parser.push(value)) {
					const job = JSON.parse(message.data);
					onJob(job);
					if (isTerminal(job.status)) return job;
				}
			}
		} catch {
			return "broken";
		} finally {
			reader.cancel().catch(() => {});
		}
	}

	/** Calls `onJob` with each update until the job is terminal; live via the event stream, else by polling. */
	async function watchJob(id, onJob, signal) {
		const streamed = await followStream(id, onJob, signal);
		if (typeof streamed === "object") return streamed;
		while (!signal.aborted) {
			const job = await request("GET", `/v1/jobs/${encodeURIComponent(id)}`);
			if (signal.aborted) break;
			onJob(job);
			if (isTerminal(job.status)) return job;
			await new Promise((r) => setTimeout(r, POLL_MS));
		}
		return undefined;
	}

	return {
		limits: () => request("GET", "/v1/limits"),
		listModels: async () => (await request("GET", "/v1/models")).data,
		createJob: (body) => request("POST", "/v1/jobs", body, { "idempotency-key": crypto.randomUUID() }),
		getJob: (id) => request("GET", `/v1/jobs/${encodeURIComponent(id)}`),
		cancelJob: (id) => request("POST", `/v1/jobs/${encodeURIComponent(id)}/cancel`),
		shareJob: (id) => request("POST", `/v1/jobs/${encodeURIComponent(id)}/share`, {}),
		listJobs: (limit = 10) => request("GET", `/v1/jobs?limit=${limit}`),
		uploadFile,
		watchJob,
	};
}
