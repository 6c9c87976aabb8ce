import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import { ApiError } from "../errors";

/**
 * The largest JSON request body: every JSON the API takes (job, upload, key, backend, webhook requests) is a few
 * KiB, and a body is parsed whole in memory, so anything near the Worker's memory must be refused before parsing.
 */
export const MAX_JSON_BODY_BYTES = 1024 * 1024;

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\b/i;

const limit = bodyLimit({
	maxSize: MAX_JSON_BODY_BYTES,
	onError: () => {
		throw new ApiError("payload_too_large", `A JSON request body may be at most ${MAX_JSON_BODY_BYTES} bytes.`);
	},
});

/** 413 for JSON bodies over the limit (by Content-Length, or counted while read); other bodies stream untouched. */
export const limitJsonBodies = createMiddleware(async (c, next) => {
	if (!c.req.raw.body || !JSON_TYPE.test(c.req.header("content-type") ?? "")) return next();
	return limit(c, next);
});
