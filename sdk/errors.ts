import type { Job, Problem } from "./types.ts";

/** Any failed API call: carries the RFC 9457 problem the server sent (or one made up for non-problem answers). */
export class ReelgateError extends Error {
	readonly status: number;
	readonly code: string;
	readonly problem: Problem;
	readonly requestId?: string;

	constructor(problem: Problem, requestId?: string) {
		super(`${problem.detail} (${problem.status} ${problem.code})`);
		this.name = "ReelgateError";
		this.status = problem.status;
		this.code = problem.code;
		this.problem = problem;
		this.requestId = requestId ?? problem.request_id;
	}

	/** Each refused field with its rule (`errors` of the problem): what a form shows next to each field. */
	get fieldErrors(): { path: string; field: string; message: string }[] {
		return (this.problem.errors ?? []).map((e) => ({ ...e, field: e.path.replace(/^json\.?/, "") || "body" }));
	}

	/** Reads a failed response into an error; a body that is not a problem still yields a useful one. */
	static async fromResponse(res: Response): Promise<ReelgateError> {
		const requestId = res.headers.get("x-request-id") ?? undefined;
		const text = await res.text().catch(() => "");
		try {
			const parsed = JSON.parse(text) as Partial<Problem>;
			if (typeof parsed.detail === "string" && typeof parsed.code === "string") {
				return new ReelgateError({ ...(parsed as Problem), status: parsed.status ?? res.status }, requestId);
			}
		} catch {
			// Not JSON (a proxy's HTML page, say): described below.
		}
		const problem = {
			type: "about:blank",
			title: res.statusText || "HTTP error",
			status: res.status,
			detail: text.slice(0, 500) || `HTTP ${res.status}`,
			code: codeForStatus(res.status),
		} as Problem;
		return new ReelgateError(problem, requestId);
	}
}

function codeForStatus(status: number): string {
	if (status === 401) return "unauthorized";
	if (status === 403) return "forbidden";
	if (status === 404) return "not_found";
	if (status === 409) return "conflict";
	if (status === 413) return "payload_too_large";
	if (status === 429) return "rate_limited";
	if (status >= 500) return "internal";
	return "invalid_request";
}

/**
 * No answer at all: nothing listens at the URL, DNS failed, the connection broke on every retry. The message names
 * the URL tried (never a signed URL's query) and how to point the client elsewhere.
 */
export class ReelgateConnectionError extends Error {
	readonly url: string;

	constructor(message: string, url: string, cause: unknown) {
		super(message, { cause });
		this.name = "ReelgateConnectionError";
		this.url = url;
	}
}

/** `run` waited for a job that ended without a video: `job` says how (`failed` with its `error`, or `canceled`). */
export class JobFailedError extends Error {
	readonly job: Job;

	constructor(job: Job) {
		super(
			job.status === "canceled"
				? `The job ${job.id} was canceled.`
				: `The job ${job.id} failed: ${job.error ? `${job.error.code}: ${job.error.message}` : "no reason given"}.`,
		);
		this.name = "JobFailedError";
		this.job = job;
	}
}

/** Why a fetch got no answer, in a word or two (`ECONNREFUSED`, `ENOTFOUND`, …). */
export function networkCause(err: unknown): string {
	const e = err as { cause?: { code?: string; message?: string }; message?: string };
	return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}
