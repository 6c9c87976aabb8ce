import type { Problem } from "./types.ts";

/** Any failed API call: carries the RFC 9457 problem the server sent (or one made up for non-problem answers). */
export class ReelgateError extends Error {
	readonly status: number;
	readonly code: string;
	readonly problem: Problem;
	readonly requestId?: string;

	constructor(problem: Problem, requestId?: string) {
		super(`${problem.title} (${problem.status} ${problem.code}): ${problem.detail}`);
		this.name = "ReelgateError";
		this.status = problem.status;
		this.code = problem.code;
		this.problem = problem;
		this.requestId = requestId ?? problem.request_id;
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
