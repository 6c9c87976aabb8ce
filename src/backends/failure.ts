/**
 * What a backend can say when a call fails, as one tagged reason, and what each reason means for the job, the
 * backend's circuit breaker and failover: one exhaustive switch (`policyOf`), so a new reason does not compile
 * until its policy is decided.
 */
import { parseRetryAfter } from "../lib/retry-after";

export type FailureReason =
	/** The backend answered but would not take the call now (429, 408, 5xx): it did not take the job. */
	| "unavailable"
	/** The backend refused this job's request (another 4xx, a workflow it rejects): it did not take the job. */
	| "rejected"
	/** The backend refuses every job (its API key, an unknown endpoint): it did not take the job. */
	| "misconfigured"
	/** No answer (timeout, connection refused): whether the backend took the job is unknown. */
	| "unreachable"
	/** An answer that cannot be read (no job id, an unknown status): the backend may have taken the job. */
	| "bad_answer"
	/** Not a failure of the backend: it is preparing (a vast.ai instance booting). */
	| "booting"
	/** The backend has no machine to offer within its wait (no vast.ai offer matches its filters): it did not take the job. */
	| "no_capacity"
	/** The job's own input is gone from storage: no backend could run it. */
	| "input_missing"
	/** The job's input in storage is not the verified bytes: no backend may run it. */
	| "input_changed";

/** A failed call to a backend. Adapters return these, never throw them. */
export interface BackendFailure {
	ok: false;
	reason: FailureReason;
	/** Safe to show on the job: never a URL with a signature or a token. */
	message: string;
	/** The server's Retry-After, when it gave one. */
	retryAfterMs?: number;
	/** The job's error code when this failure ends it (default `backend_error`). */
	code?: string;
}

export type BackendResult<T> = ({ ok: true } & T) | BackendFailure;

export interface FailurePolicy {
	/** Try again (with backoff) on the same backend; otherwise the job fails. */
	retry: boolean;
	/** What the call tells the backend's circuit breaker: it failed, it worked, or nothing. */
	breaker: "failure" | "success" | "ignore";
	/**
	 * Whether a job that never ran may move to another backend: at once, after repeated refusals, or never. Only
	 * when the backend certainly did not take the job, so no job can run twice.
	 */
	failover: "now" | "after_refusals" | "never";
}

export function policyOf(reason: FailureReason): FailurePolicy {
	switch (reason) {
		case "unavailable":
			return { retry: true, breaker: "failure", failover: "after_refusals" };
		case "rejected":
			// One job's refused input says nothing of the backend's health.
			return { retry: false, breaker: "success", failover: "now" };
		case "misconfigured":
			return { retry: false, breaker: "failure", failover: "now" };
		case "unreachable":
		case "bad_answer":
			return { retry: true, breaker: "failure", failover: "never" };
		case "booting":
			return { retry: true, breaker: "ignore", failover: "never" };
		case "no_capacity":
			// The backend is healthy; it just has nothing to rent. Another backend may.
			return { retry: false, breaker: "ignore", failover: "now" };
		case "input_missing":
		case "input_changed":
			return { retry: false, breaker: "success", failover: "never" };
	}
}

export function failure(reason: FailureReason, message: string, retryAfterMs?: number): BackendFailure {
	return retryAfterMs === undefined ? { ok: false, reason, message } : { ok: false, reason, message, retryAfterMs };
}

/** An HTTP error answer: 429, 408 and 5xx are worth retrying, other 4xx mean the request is wrong. */
export function httpFailure(res: Response, what: string): BackendFailure {
	const busy = res.status === 429 || res.status === 408 || res.status >= 500;
	return failure(
		busy ? "unavailable" : "rejected",
		`${what}: the backend answered HTTP ${res.status}.`,
		parseRetryAfter(res.headers.get("retry-after")),
	);
}

/** A fetch that threw (timeout, refused connection). */
export function networkFailure(err: unknown, what: string): BackendFailure {
	const name = err instanceof Error ? err.name : "";
	const reason = name === "TimeoutError" || name === "AbortError" ? "timed out" : "could not be reached";
	return failure("unreachable", `${what}: the backend ${reason}.`);
}
