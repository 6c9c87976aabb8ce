import { createMiddleware } from "hono/factory";
import { ApiError, problemResponse } from "../errors";

/**
 * The largest request body any route reads whole: every JSON the API takes (job, upload, key, backend, webhook,
 * share requests) is a few KiB, and such a body is parsed in memory, so anything near the Worker's memory must be
 * refused before it is read. Bytes never travel in these bodies: they go to signed storage URLs, which stream.
 */
export const MAX_JSON_BODY_BYTES = 1024 * 1024;

const tooLarge = () => new ApiError("payload_too_large", `A request body may be at most ${MAX_JSON_BODY_BYTES} bytes.`);

/**
 * 413 for a body over the limit, whatever its Content-Type: at once when Content-Length says so, and otherwise
 * (none, or one that lies) while it is read, since the body is counted as it streams and errors past the limit,
 * so no route can buffer more than the limit plus one chunk. `exempt` paths (signed storage PUTs, which stream into
 * R2 under their own signed size) are left alone.
 */
export function limitBodies(exempt: (path: string) => boolean) {
	return createMiddleware(async (c, next) => {
		const body = c.req.raw.body;
		// No route reads a GET or HEAD body, and such a request cannot be rebuilt with one: it is left unread.
		if (!body || c.req.method === "GET" || c.req.method === "HEAD" || exempt(new URL(c.req.url).pathname)) {
			return next();
		}
		const declared = c.req.header("content-length");
		if (declared !== undefined && /^\d{1,16}$/.test(declared) && Number(declared) > MAX_JSON_BODY_BYTES) {
			// Not read at all: the platform discards what the client keeps sending.
			throw tooLarge();
		}
		let seen = 0;
		let crossed = false;
		const counted = body.pipeThrough(
			new TransformStream<Uint8Array, Uint8Array>({
				transform(chunk, controller) {
					seen += chunk.byteLength;
					if (seen > MAX_JSON_BODY_BYTES) {
						crossed = true;
						controller.error(tooLarge());
						return;
					}
					controller.enqueue(chunk);
				},
			}),
		);
		c.req.raw = new Request(c.req.raw, { body: counted, duplex: "half" } as RequestInit);
		await next();
		// A reader may have turned the error into its own (a body validator's "malformed JSON"): the size is why.
		if (crossed && c.res.status !== 413) {
			const err = tooLarge();
			c.res = problemResponse(err.code, err.detail, { requestId: c.get("requestId") });
		}
	});
}
