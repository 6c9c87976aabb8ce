import { configOf } from "../config";
import { getReadyUpload, insertUpload, type ReadyUpload, type UploadRow } from "../db/uploads";
import type { ErrorCode } from "../errors";
import { newId, nowIso } from "../lib/ids";
import { checkOutboundUrl } from "../lib/url-guard";
import { objectKeys } from "./index";
import { maxBytesFor } from "./limits";
import { putStream } from "./put-stream";
import { settleUpload } from "./settle";
import { mediaKind, normalizeMediaType, SNIFF_BYTES, sniff } from "./sniff";

/** At most this many redirects are followed, each re-checked by the SSRF guard. */
export const MAX_REDIRECTS = 5;
/** Bodies without a Content-Length are stored in multipart parts of this size, so memory stays bounded. */
const CHUNK_PART_BYTES = 8 * 1024 * 1024;

/** Why a URL input was refused: `code` is the problem code for `new ApiError(code, message)`. */
export interface UrlInputRefusal {
	ok: false;
	code: Extract<ErrorCode, "invalid_request" | "payload_too_large" | "unsupported_media_type" | "unprocessable">;
	reason: "forbidden_url" | "redirects" | "fetch_failed" | "http_status" | "timeout" | "too_large" | "type" | "content";
	message: string;
}

export type UrlInputResult = { ok: true; upload: ReadyUpload } | UrlInputRefusal;

export interface IngestOptions {
	/** The fetch to use (tests pass a fake); defaults to the global one. */
	fetcher?: typeof fetch;
	/** Overrides `URL_INPUT_TIMEOUT_MS`. */
	timeoutMs?: number;
}

function refusal(code: UrlInputRefusal["code"], reason: UrlInputRefusal["reason"], message: string): UrlInputRefusal {
	return { ok: false, code, reason, message };
}

/**
 * Fetches a job's URL input (`"image": "https://…"`) into R2 and stores it as a verified upload, so the job
 * references an `upl_` id like any other input. Guarded against SSRF (src/lib/url-guard.ts: https only, no private,
 * loopback, link-local, metadata or internal hosts, re-checked on every redirect, at most 5; loopback only with
 * `ALLOW_LOOPBACK_URL_INPUTS=true`), capped at the kind's byte limit (the body is streamed, never buffered
 * whole) and at `URL_INPUT_TIMEOUT_MS`, then given the same checks as an upload: magic bytes of the expected
 * kind, the server's declared type (when it names one we accept), image dimensions, audio duration.
 * A refusal leaves nothing stored (a row for content failures stays, `failed`, for the record).
 */
export async function ingestUrlInput(
	env: Env,
	accountId: string,
	url: string,
	expectedKind: "image" | "audio",
	options: IngestOptions = {},
): Promise<UrlInputResult> {
	const fetcher = options.fetcher ?? fetch;
	const config = configOf(env);
	const allowLoopback = config.urlInputs.allowLoopback;
	const timeoutMs = options.timeoutMs ?? config.urlInputs.timeoutMs;
	const cap = maxBytesFor(config.media, expectedKind);
	const signal = AbortSignal.timeout(timeoutMs);
	const timedOut = () => refusal("invalid_request", "timeout", `Fetching ${url} took longer than ${timeoutMs} ms.`);

	let response: Response | null = null;
	let current = url;
	for (let hop = 0; !response; hop++) {
		const check = checkOutboundUrl(current, { allowLoopback });
		if (!check.ok) return refusal("unprocessable", "forbidden_url", check.message);
		let res: Response;
		try {
			res = await fetcher(check.url.toString(), {
				redirect: "manual",
				signal,
				headers: { accept: `${expectedKind}/*` },
			});
		} catch (err) {
			if (signal.aborted) return timedOut();
			return refusal("invalid_request", "fetch_failed", `Fetching ${url} failed: ${String(err).slice(0, 200)}.`);
		}
		if (res.status >= 300 && res.status < 400 && res.status !== 304) {
			await res.body?.cancel().catch(() => undefined);
			const location = res.headers.get("location");
			if (!location) return refusal("invalid_request", "http_status", `${current} redirected without a Location.`);
			if (hop >= MAX_REDIRECTS) {
				return refusal("invalid_request", "redirects", `${url} redirected more than ${MAX_REDIRECTS} times.`);
			}
			current = new URL(location, check.url).toString();
			continue;
		}
		if (!res.ok) {
			await res.body?.cancel().catch(() => undefined);
			return refusal("invalid_request", "http_status", `Fetching ${url} answered HTTP ${res.status}.`);
		}
		response = res;
	}

	const id = newId("upl");
	const key = objectKeys.uploadKey(accountId, id);
	const declaredHeader = response.headers.get("content-type");
	const lengthHeader = response.headers.get("content-length");
	let size: number;
	if (lengthHeader !== null && /^\d{1,16}$/.test(lengthHeader)) {
		const length = Number(lengthHeader);
		if (length > cap) {
			await response.body?.cancel().catch(() => undefined);
			return refusal("payload_too_large", "too_large", `${url} is ${length} bytes; at most ${cap} are accepted.`);
		}
		const stored = await putStream(env.BUCKET, key, response.body, length);
		if (!stored.ok) {
			if (signal.aborted) return timedOut();
			return refusal("invalid_request", "fetch_failed", `${url} ended before its ${length} bytes.`);
		}
		size = length;
	} else {
		const stored = await putChunked(env.BUCKET, key, response.body, cap);
		if (!stored.ok) {
			if (stored.reason === "too_large") {
				return refusal("payload_too_large", "too_large", `${url} is larger than the ${cap} bytes accepted.`);
			}
			return signal.aborted ? timedOut() : refusal("invalid_request", "fetch_failed", `Reading ${url} failed.`);
		}
		size = stored.size;
	}

	// The type comes from the bytes; a server that names an accepted type must agree with them.
	const head = await env.BUCKET.get(key, { range: { offset: 0, length: Math.min(SNIFF_BYTES, size) } });
	const sniffed = head && "body" in head ? sniff(new Uint8Array(await head.arrayBuffer())) : null;
	if (!sniffed || mediaKind(sniffed) !== expectedKind) {
		await env.BUCKET.delete(key);
		return refusal(
			"unsupported_media_type",
			"type",
			`${url} is not an accepted ${expectedKind}${sniffed ? ` (it looks like ${sniffed})` : ""}.`,
		);
	}
	const declared = declaredHeader ? normalizeMediaType(declaredHeader) : null;
	if (declared && declared !== sniffed) {
		await env.BUCKET.delete(key);
		return refusal("unprocessable", "type", `${url} is served as ${declared} but its bytes are ${sniffed}.`);
	}

	const now = nowIso();
	const row: UploadRow = {
		id,
		account_id: accountId,
		filename: filenameOf(url, sniffed),
		content_type: sniffed,
		size,
		sha256: null,
		status: "pending",
		object_key: key,
		error: null,
		etag: null,
		created_at: now,
		expires_at: now,
		completed_at: null,
		source_url: url.slice(0, 2000),
	};
	await insertUpload(env.DB, row);
	const settled = await settleUpload(env, row);
	if (!settled.ok) {
		await env.BUCKET.delete(key);
		return refusal("unprocessable", "content", settled.message);
	}
	const ready = await getReadyUpload(env.DB, accountId, id);
	if (!ready) return refusal("unprocessable", "content", "The fetched input could not be verified.");
	return { ok: true, upload: ready };
}

/** A readable name for the row: the URL's last path segment, else `input.<ext>`. */
function filenameOf(url: string, type: string): string {
	try {
		const last = decodeURIComponent(new URL(url).pathname.split("/").pop() ?? "");
		const clean = last.replace(/[^\x20-\x7e]/g, "_").slice(0, 255);
		if (clean) return clean;
	} catch {
		// Fall through to the generic name.
	}
	return `input.${type.split("/")[1]}`;
}

/**
 * Stores a body of unknown length: a single put when it fits in one part, else a multipart upload of
 * fixed-size parts (R2 needs a known length per put, and equal non-trailing parts). At most one part is held
 * in memory; crossing `cap` aborts everything.
 */
async function putChunked(
	bucket: R2Bucket,
	key: string,
	body: ReadableStream<Uint8Array> | null,
	cap: number,
): Promise<{ ok: true; size: number } | { ok: false; reason: "too_large" | "read_failed" }> {
	if (!body) return { ok: false, reason: "read_failed" };
	const reader = body.getReader();
	let pending: Uint8Array[] = [];
	let pendingBytes = 0;
	let total = 0;
	let multipart: R2MultipartUpload | null = null;
	const parts: R2UploadedPart[] = [];
	const take = (n: number): Uint8Array => {
		const out = new Uint8Array(n);
		let at = 0;
		const rest: Uint8Array[] = [];
		for (const chunk of pending) {
			const room = n - at;
			if (room <= 0) rest.push(chunk);
			else if (chunk.byteLength <= room) {
				out.set(chunk, at);
				at += chunk.byteLength;
			} else {
				out.set(chunk.subarray(0, room), at);
				at += room;
				rest.push(chunk.subarray(room));
			}
		}
		pending = rest;
		pendingBytes -= n;
		return out;
	};
	try {
		for (;;) {
			const { done, value } = await reader.read();
			if (done) break;
			total += value.byteLength;
			if (total > cap) {
				await reader.cancel().catch(() => undefined);
				await multipart?.abort().catch(() => undefined);
				return { ok: false, reason: "too_large" };
			}
			pending.push(value);
			pendingBytes += value.byteLength;
			while (pendingBytes >= CHUNK_PART_BYTES) {
				multipart ??= await bucket.createMultipartUpload(key);
				parts.push(await multipart.uploadPart(parts.length + 1, take(CHUNK_PART_BYTES)));
			}
		}
	} catch {
		await multipart?.abort().catch(() => undefined);
		return { ok: false, reason: "read_failed" };
	}
	const rest = take(pendingBytes);
	if (!multipart) await bucket.put(key, rest);
	else {
		if (rest.byteLength > 0) parts.push(await multipart.uploadPart(parts.length + 1, rest));
		await multipart.complete(parts);
	}
	return { ok: true, size: total };
}
