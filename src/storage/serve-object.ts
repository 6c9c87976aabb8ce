import { ApiError } from "../errors";
import { contentRange, parseRange } from "./range";

/** How `serveObject` labels what it serves. */
export interface ServeObjectOptions {
	/** Overrides the Content-Type stored with the object. */
	contentType?: string;
	/** Adds `Content-Disposition: inline` with this name. */
	filename?: string;
	cacheControl?: string;
}

/** The opaque part of an entity tag, and whether it is weak. */
function parseEtag(tag: string): { weak: boolean; opaque: string } {
	const t = tag.trim();
	return t.startsWith("W/") ? { weak: true, opaque: t.slice(2) } : { weak: false, opaque: t };
}

/** `If-None-Match` uses the weak comparison: `W/"x"` matches `"x"`. */
function noneMatchHits(header: string, etag: string): boolean {
	if (header.trim() === "*") return true;
	const ours = parseEtag(etag).opaque;
	return header.split(",").some((tag) => parseEtag(tag).opaque === ours);
}

/** `If-Range` uses the strong comparison: a weak tag never matches; a date must equal Last-Modified. */
function ifRangeHolds(header: string, etag: string, uploaded: Date): boolean {
	const value = header.trim();
	if (value.startsWith('"') || value.startsWith("W/")) {
		const tag = parseEtag(value);
		return !tag.weak && tag.opaque === etag;
	}
	const date = Date.parse(value);
	return !Number.isNaN(date) && date === secondsOf(uploaded);
}

/** HTTP dates have whole seconds, so compare at that precision. */
function secondsOf(date: Date): number {
	return Math.floor(date.getTime() / 1000) * 1000;
}

/** `filename*` per RFC 6266/8187 plus an ASCII fallback for old clients. */
export function contentDisposition(filename: string): string {
	const fallback = filename.replace(/[^\x20-\x7e]|["\\]/g, "_");
	const encoded = encodeURIComponent(filename).replace(
		/['()*]/g,
		(c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
	);
	return `inline; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}

function baseHeaders(head: R2Object, options: ServeObjectOptions): Headers {
	const headers = new Headers();
	head.writeHttpMetadata(headers);
	if (options.contentType) headers.set("content-type", options.contentType);
	if (!headers.has("content-type")) headers.set("content-type", "application/octet-stream");
	if (options.filename) headers.set("content-disposition", contentDisposition(options.filename));
	if (options.cacheControl) headers.set("cache-control", options.cacheControl);
	headers.set("accept-ranges", "bytes");
	headers.set("etag", head.httpEtag);
	headers.set("last-modified", head.uploaded.toUTCString());
	return headers;
}

/**
 * Serves an R2 object for GET or HEAD, streamed (never read whole into memory), with validators and ranges:
 * `If-None-Match` (weak, `*`) and `If-Modified-Since` → 304; one `Range` → 206 (several: 200 whole, see
 * `range.ts`); an unsatisfiable one → 416 problem; `If-Range` that does not hold → 200 whole.
 * Returns null when the object does not exist, so the caller picks its own 404.
 *
 * The object is read with `head` first (to know its size and validators), then with a `get` bound to that
 * etag, so a concurrent overwrite cannot splice two versions into one response.
 */
export async function serveObject(
	bucket: R2Bucket,
	key: string,
	request: Request,
	options: ServeObjectOptions = {},
): Promise<Response | null> {
	for (let attempt = 0; attempt < 3; attempt++) {
		const head = await bucket.head(key);
		if (!head) return null;
		const response = await serveVersion(bucket, head, request, options);
		if (response) return response;
		// The object changed between head and get: start over with the new version.
	}
	throw new ApiError("conflict", "The object is being replaced; retry.");
}

async function serveVersion(
	bucket: R2Bucket,
	head: R2Object,
	request: Request,
	options: ServeObjectOptions,
): Promise<Response | null> {
	const headers = baseHeaders(head, options);
	const size = head.size;

	const noneMatch = request.headers.get("if-none-match");
	const modifiedSince = request.headers.get("if-modified-since");
	// RFC 9110 §13.2.2: If-Modified-Since is only considered without If-None-Match.
	const notModified = noneMatch
		? noneMatchHits(noneMatch, head.httpEtag)
		: modifiedSince !== null && secondsOf(head.uploaded) <= Date.parse(modifiedSince);
	if (notModified) {
		headers.delete("content-type");
		headers.delete("content-disposition");
		return new Response(null, { status: 304, headers });
	}

	const ifRange = request.headers.get("if-range");
	const range =
		ifRange !== null && !ifRangeHolds(ifRange, head.httpEtag, head.uploaded)
			? ({ kind: "whole" } as const)
			: parseRange(request.headers.get("range"), size);

	if (range.kind === "unsatisfiable") {
		throw new ApiError("range_not_satisfiable", `The range cannot be served from an object of ${size} bytes.`, {
			headers: { "content-range": contentRange(size), "accept-ranges": "bytes" },
		});
	}
	const status = range.kind === "partial" ? 206 : 200;
	const offset = range.kind === "partial" ? range.start : 0;
	const length = range.kind === "partial" ? range.end - range.start + 1 : size;
	headers.set("content-length", String(length));
	if (range.kind === "partial") headers.set("content-range", contentRange(size, range));

	if (request.method === "HEAD") return new Response(null, { status, headers });
	if (length === 0) return new Response(new Uint8Array(0), { status, headers });

	const object = await bucket.get(head.key, {
		range: { offset, length },
		onlyIf: { etagMatches: head.etag },
	});
	if (!object || !("body" in object)) return null;
	return new Response(object.body, { status, headers });
}
