import type { OpenAPIHono } from "@hono/zod-openapi";
import { problemResponses } from "../errors";
import { rateLimitedResponse } from "../limits/headers";

type Registry = OpenAPIHono["openAPIRegistry"];
type RouteConfig = Parameters<Registry["registerPath"]>[0];

/**
 * The problems the app's shared machinery can answer on a route, whatever its handler does: 400 from the
 * validation hook when the route validates any part of the request; 413 from the body limit when it takes a body or
 * is a POST, PUT or PATCH (a client may send one anyway) and 415 from the body validator's content-type check when
 * it takes a body; 401 and 403 from the auth middleware when it is
 * secured; 429 from the rate limiter, which every API-key route passes through. Declared here once so no route's
 * OpenAPI entry can miss them.
 */
export function commonProblemStatuses(route: RouteConfig): number[] {
	const request = route.request;
	const statuses: number[] = [];
	if (request && (request.params || request.query || request.headers || request.cookies || request.body)) {
		statuses.push(400);
	}
	if (request?.body) statuses.push(413, 415);
	// The body limit counts any body sent, declared or not (src/lib/json-body-limit.ts).
	else if (["post", "put", "patch"].includes(route.method)) statuses.push(413);
	if (route.security?.some((requirement) => Object.keys(requirement).length > 0)) statuses.push(401, 403);
	return statuses;
}

const securedByApiKey = (route: RouteConfig) =>
	route.security?.some((requirement: Record<string, string[]>) => "apiKey" in requirement) ?? false;

/** Adds the common problem responses to every route registered so far, keeping any the route declares itself. */
export function declareCommonProblems(registry: Registry): void {
	for (const def of registry.definitions) {
		if (def.type !== "route") continue;
		const common = {
			...problemResponses(...commonProblemStatuses(def.route)),
			...(securedByApiKey(def.route) ? rateLimitedResponse : {}),
		};
		def.route.responses = { ...common, ...def.route.responses };
	}
}
