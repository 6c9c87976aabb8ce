import type { Hook } from "@hono/zod-openapi";
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { configOf } from "./config";
import type { AppEnv } from "./env";
import { ApiError, type ErrorCode, problemResponse } from "./errors";
import { newId } from "./lib/ids";
import { limitBodies } from "./lib/json-body-limit";
import { createLogger } from "./lib/logger";
import { fieldErrors, validationDetail } from "./validation";

/** A refused request: `errors` lists every field with its rule, `detail` says the first few in a sentence. */
const validationHook: Hook<unknown, AppEnv, string, unknown> = (result, c) => {
	if (result.success) return;
	const errors = fieldErrors(result.target, result.error.issues);
	return problemResponse("invalid_request", validationDetail(errors), {
		errors,
		requestId: c.get("requestId"),
	});
};

/** A router with the app's validation hook; every route file builds its routes on one. */
export function newRouter(): OpenAPIHono<AppEnv> {
	return new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** `PUT /v1/admin/model-files/{upload_id}/parts/{part_number}`: a part streamed into R2 with its Content-Length. */
const MODEL_FILE_PART = /^\/v1\/admin\/model-files\/[^/]+\/parts\/[^/]+$/;

/** Methods that read: a successful, prompt one writes no access line (see `accessLogged`). */
const READ_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
/** A read slower than this is logged even when it succeeds. */
export const SLOW_READ_MS = 1000;

/**
 * Whether a request gets its `request` access line: every request that writes, every refusal and error (status ≥
 * 400), and every read slower than SLOW_READ_MS. A successful, prompt read does not: it is the bulk of the traffic (a
 * client polling a 5-minute job every 2 s makes 150 of them), its line was a sixth of the status read's CPU, and the
 * platform's own invocation logs record every request with its status and duration anyway.
 */
export function accessLogged(method: string, status: number, durationMs: number): boolean {
	return !READ_METHODS.has(method) || status >= 400 || durationMs >= SLOW_READ_MS;
}

function codeForStatus(status: number): ErrorCode {
	switch (status) {
		case 400:
			return "invalid_request";
		case 401:
			return "unauthorized";
		case 403:
			return "forbidden";
		case 404:
			return "not_found";
		case 405:
			return "method_not_allowed";
		case 409:
			return "conflict";
		case 413:
			return "payload_too_large";
		case 415:
			return "unsupported_media_type";
		case 416:
			return "range_not_satisfiable";
		case 422:
			return "unprocessable";
		case 429:
			return "rate_limited";
		default:
			return status >= 500 ? "internal" : "invalid_request";
	}
}

/** The single place errors become problem responses. */
export function onError(err: Error, c: Context<AppEnv>): Response {
	const requestId = c.get("requestId");
	const instance = new URL(c.req.url).pathname;
	if (err instanceof ApiError) {
		return problemResponse(err.code, err.detail, { errors: err.errors, headers: err.headers, requestId, instance });
	}
	if (err instanceof HTTPException) {
		const code = codeForStatus(err.status);
		const detail =
			code === "internal" ? "An internal error occurred." : err.message || "The request could not be handled.";
		return problemResponse(code, detail, { requestId, instance });
	}
	c.get("log")?.error("unhandled_error", { error: err.message, stack: err.stack });
	return problemResponse("internal", "An internal error occurred.", { requestId, instance });
}

/**
 * Nothing the Worker serves may be framed. JSON (answers and problems) loads nothing, so it gets `default-src
 * 'none'` too; media opened in a tab (a share link's video) would be broken by that, so it only forbids framing.
 * A page sets its own policy (`/docs`).
 */
function cspFor(res: Response): string {
	const json = /[/+]json\b/.test(res.headers.get("content-type") ?? "");
	return json ? "default-src 'none'; frame-ancestors 'none'" : "frame-ancestors 'none'";
}

/** Request id, JSON access log, security headers, CORS, the body limit: installed once, before every route. */
export function installBaseMiddleware(app: OpenAPIHono<AppEnv>): void {
	app.use("*", async (c, next) => {
		const incoming = c.req.header("x-request-id");
		const requestId = incoming && REQUEST_ID.test(incoming) ? incoming : newId("req");
		const log = createLogger({ request_id: requestId });
		c.set("requestId", requestId);
		c.set("log", log);
		const started = Date.now();
		// Parsed before any route runs, so a bad var fails every request with a log that names it.
		c.set("config", configOf(c.env));
		await next();
		c.res.headers.set("x-request-id", requestId);
		c.res.headers.set("x-content-type-options", "nosniff");
		c.res.headers.set("referrer-policy", "no-referrer");
		c.res.headers.set("strict-transport-security", "max-age=31536000; includeSubDomains");
		c.res.headers.set("x-frame-options", "DENY");
		if (!c.res.headers.has("content-security-policy")) c.res.headers.set("content-security-policy", cspFor(c.res));
		if (!c.res.headers.has("cache-control")) c.res.headers.set("cache-control", "no-store");
		const durationMs = Date.now() - started;
		if (accessLogged(c.req.method, c.res.status, durationMs)) {
			// The path only: query strings can carry signatures.
			log.info("request", {
				method: c.req.method,
				path: new URL(c.req.url).pathname,
				status: c.res.status,
				duration_ms: durationMs,
			});
		}
	});
	app.use("*", async (c, next) => {
		const origin = c.req.header("origin");
		const allowed = c.get("config").corsOrigins;
		const allow = origin && (allowed.includes("*") || allowed.includes(origin)) ? origin : null;
		if (c.req.method === "OPTIONS" && allow) {
			return new Response(null, {
				status: 204,
				headers: {
					"access-control-allow-origin": allow,
					"access-control-allow-methods": "GET, POST, PUT, DELETE, OPTIONS",
					"access-control-allow-headers":
						c.req.header("access-control-request-headers") ?? "authorization, content-type, idempotency-key",
					"access-control-max-age": "86400",
					vary: "origin",
				},
			});
		}
		await next();
		if (allow) {
			c.res.headers.set("access-control-allow-origin", allow);
			c.res.headers.set(
				"access-control-expose-headers",
				"x-request-id, etag, content-length, content-range, accept-ranges, retry-after, location, ratelimit, ratelimit-policy",
			);
		}
		// The answer depends on Origin whether or not this one is allowed: caches must key on it.
		c.res.headers.append("vary", "origin");
	});
	// Signed storage PUTs, one-request uploads (src/routes/uploads-inline.ts) and an operator's model-file parts
	// (src/routes/admin-model-files.ts) stream into R2 under their own declared length, which R2 needs known; every
	// other body is read whole, so capped.
	app.use(
		"*",
		limitBodies(
			(path) => path.startsWith("/v1/storage/") || path === "/v1/uploads/inline" || MODEL_FILE_PART.test(path),
		),
	);
	app.use("*", refuseOtherMethodsOnLiteralPaths(app));
	app.use("*", requireDeclaredBodies(app));
}

/**
 * A path that is some route's literal path (`/v1/uploads/inline`) is served by its literal routes alone, as OpenAPI
 * matches a concrete path before a templated one: another method is a 405 with that path's `Allow`, never a call to
 * a templated route it happens to fit (`GET /v1/uploads/{id}` with the id `inline`).
 */
function refuseOtherMethodsOnLiteralPaths(app: OpenAPIHono<AppEnv>): MiddlewareHandler<AppEnv> {
	// Computed at the first request, when every route is mounted.
	let literal: Map<string, Set<string>> | undefined;
	return async (c, next) => {
		literal ??= literalPathMethods(app);
		// Hono's path, already split from the URL (no second parse on every request): a literal path needs no decoding.
		const methods = literal.get(c.req.path);
		if (methods && !methods.has(c.req.method)) {
			return problemResponse("method_not_allowed", `${c.req.method} is not allowed on ${c.req.path}.`, {
				requestId: c.get("requestId"),
				headers: { allow: [...methods].join(", ") },
			});
		}
		await next();
	};
}

/** Each literal route path (no parameter, no wildcard) with the methods it is served with. */
function literalPathMethods(app: OpenAPIHono<AppEnv>): Map<string, Set<string>> {
	const literal = new Map<string, Set<string>>();
	for (const route of app.routes) {
		if (route.method === "ALL" || route.path.includes(":") || route.path.includes("*")) continue;
		const methods = literal.get(route.path) ?? new Set<string>();
		methods.add(route.method);
		// Hono answers HEAD with the GET handler.
		if (route.method === "GET") methods.add("HEAD");
		literal.set(route.path, methods);
	}
	return literal;
}

/**
 * A request without a body, to a route whose JSON body is required (its OpenAPI `requestBody.required`), is refused
 * as that field: the body validator would read the missing body as `{}`, which a schema of optional fields accepts.
 */
function requireDeclaredBodies(app: OpenAPIHono<AppEnv>): MiddlewareHandler<AppEnv> {
	// Computed at the first request, when every route is mounted.
	let routes: { method: string; pattern: RegExp }[] | undefined;
	return async (c, next) => {
		routes ??= app.openAPIRegistry.definitions.flatMap((d) =>
			d.type === "route" && d.route.request?.body?.required && d.route.request.body.content["application/json"]
				? [{ method: d.route.method.toUpperCase(), pattern: routePattern(d.route.path.replace(/\{(\w+)\}/g, ":$1")) }]
				: [],
		);
		// Most requests (every GET) have no route of their method that requires a body: nothing to match.
		if (!routes.some((r) => r.method === c.req.method)) return next();
		const empty = c.req.raw.body === null || c.req.header("content-length") === "0";
		const path = decodedPath(new URL(c.req.url).pathname);
		if (empty && path !== null && routes.some((r) => r.method === c.req.method && r.pattern.test(path))) {
			const errors = [{ path: "json", message: "is required: send it as JSON (Content-Type: application/json)" }];
			return problemResponse("invalid_request", validationDetail(errors), { errors, requestId: c.get("requestId") });
		}
		await next();
	};
}

/**
 * A Hono route path as a regular expression over the request path: `:name` is one segment, `:name{re}` is its own
 * pattern (which may span segments, as a storage key does).
 */
function routePattern(routePath: string): RegExp {
	const param = /:[A-Za-z_]+(?:\{([^}]+)\})?/g;
	let source = "";
	let at = 0;
	for (const match of routePath.matchAll(param)) {
		source += `${escapeRegExp(routePath.slice(at, match.index))}(?:${match[1] ?? "[^/]+"})`;
		at = match.index + match[0].length;
	}
	return new RegExp(`^${source}${escapeRegExp(routePath.slice(at))}$`);
}

function decodedPath(path: string): string | null {
	try {
		return decodeURI(path);
	} catch {
		return null;
	}
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** 404 for unknown paths, 405 (with `Allow`) for known paths with another method. */
export function installFallbacks(app: OpenAPIHono<AppEnv>): void {
	app.notFound((c) => {
		const path = new URL(c.req.url).pathname;
		const methods = new Set<string>();
		// Routes match the decoded path, as the router does (a `.+` key never spans a decoded line break).
		const decoded = decodedPath(path);
		for (const route of app.routes) {
			if (route.method === "ALL" || route.path.includes("*")) continue;
			if (decoded !== null && routePattern(route.path).test(decoded)) methods.add(route.method);
		}
		// Hono answers HEAD with the GET handler.
		if (methods.has("GET")) methods.add("HEAD");
		const requestId = c.get("requestId");
		// A method the path does serve, yet no route took: the path itself is what is not found.
		if (methods.size > 0 && !methods.has(c.req.method)) {
			return problemResponse("method_not_allowed", `${c.req.method} is not allowed on ${path}.`, {
				requestId,
				headers: { allow: [...methods].join(", ") },
			});
		}
		return problemResponse("not_found", `No route for ${c.req.method} ${path}.`, { requestId });
	});
	app.onError(onError);
}
