import { z } from "@hono/zod-openapi";

/** The closed set of machine-readable problem codes (docs/api.md). */
export const ErrorCodeSchema = z.enum([
	"invalid_request",
	"unauthorized",
	"forbidden",
	"not_found",
	"method_not_allowed",
	"conflict",
	"not_ready",
	"payload_too_large",
	"unsupported_media_type",
	"range_not_satisfiable",
	"unprocessable",
	"rate_limited",
	"spend_cap_reached",
	"idempotency_mismatch",
	"idempotency_in_flight",
	"backend_unavailable",
	"model_unavailable",
	"internal",
]);
export type ErrorCode = z.infer<typeof ErrorCodeSchema>;

export interface FieldError {
	path: string;
	message: string;
}

/** An error that becomes an RFC 9457 problem response in the app's single `onError`. */
export class ApiError extends Error {
	readonly code: ErrorCode;
	readonly detail: string;
	readonly errors?: FieldError[];
	readonly headers?: Record<string, string>;

	constructor(
		code: ErrorCode,
		detail: string,
		options: { errors?: FieldError[]; headers?: Record<string, string>; cause?: unknown } = {},
	) {
		super(detail, { cause: options.cause });
		this.name = "ApiError";
		this.code = code;
		this.detail = detail;
		this.errors = options.errors;
		this.headers = options.headers;
	}
}

/** HTTP status per code: an exhaustive switch, so a new code fails to compile until mapped. */
export function statusOf(
	code: ErrorCode,
): 400 | 401 | 402 | 403 | 404 | 405 | 409 | 413 | 415 | 416 | 422 | 429 | 500 | 503 {
	switch (code) {
		case "invalid_request":
			return 400;
		case "unauthorized":
			return 401;
		case "spend_cap_reached":
			return 402;
		case "forbidden":
			return 403;
		case "not_found":
			return 404;
		case "method_not_allowed":
			return 405;
		case "conflict":
		case "not_ready":
		case "idempotency_in_flight":
			return 409;
		case "payload_too_large":
			return 413;
		case "unsupported_media_type":
			return 415;
		case "range_not_satisfiable":
			return 416;
		case "unprocessable":
		case "idempotency_mismatch":
		case "model_unavailable":
			return 422;
		case "rate_limited":
			return 429;
		case "backend_unavailable":
			return 503;
		case "internal":
			return 500;
	}
}

const TITLES: Record<ErrorCode, string> = {
	invalid_request: "Invalid request",
	unauthorized: "Unauthorized",
	forbidden: "Forbidden",
	not_found: "Not found",
	method_not_allowed: "Method not allowed",
	conflict: "Conflict",
	not_ready: "Not ready",
	payload_too_large: "Payload too large",
	unsupported_media_type: "Unsupported media type",
	range_not_satisfiable: "Range not satisfiable",
	unprocessable: "Unprocessable content",
	rate_limited: "Too many requests",
	spend_cap_reached: "Monthly spend cap reached",
	idempotency_mismatch: "Idempotency key reused with another request",
	idempotency_in_flight: "Idempotency key in use",
	backend_unavailable: "Backend unavailable",
	model_unavailable: "Model unavailable",
	internal: "Internal error",
};

export const ProblemSchema = z
	.object({
		type: z.string(),
		title: z.string(),
		status: z.number().int(),
		detail: z.string(),
		code: ErrorCodeSchema,
		instance: z.string().optional(),
		request_id: z.string().optional(),
		errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
	})
	.openapi("Problem");
export type Problem = z.infer<typeof ProblemSchema>;

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

/** Builds the RFC 9457 body for a code; 5xx details stay generic so internals never leak. */
export function problemBody(code: ErrorCode, detail: string, extra: Partial<Problem> = {}): Problem {
	const status = statusOf(code);
	return {
		type: `https://reelgate.dev/problems/${code.replaceAll("_", "-")}`,
		title: TITLES[code],
		status,
		detail: status >= 500 && code === "internal" ? "An internal error occurred." : detail,
		code,
		...extra,
	};
}

export function problemResponse(
	code: ErrorCode,
	detail: string,
	init: { errors?: FieldError[]; headers?: Record<string, string>; requestId?: string; instance?: string } = {},
): Response {
	const body = problemBody(code, detail, {
		errors: init.errors,
		request_id: init.requestId,
		instance: init.instance,
	});
	const headers = new Headers(init.headers);
	headers.set("content-type", PROBLEM_CONTENT_TYPE);
	if (init.requestId) headers.set("x-request-id", init.requestId);
	return new Response(JSON.stringify(body), { status: body.status, headers });
}

/** Shorthands used across routes. */
export const notFound = (what: string) => new ApiError("not_found", `${what} not found.`);
export const invalid = (detail: string, errors?: FieldError[]) => new ApiError("invalid_request", detail, { errors });

/** OpenAPI response entries for the problems a route can answer with. */
export function problemResponses(...statuses: number[]) {
	const out: Record<string, { description: string; content: Record<string, { schema: typeof ProblemSchema }> }> = {};
	for (const status of statuses) {
		out[String(status)] = { description: "Problem", content: { [PROBLEM_CONTENT_TYPE]: { schema: ProblemSchema } } };
	}
	return out;
}
