import { hmacSign, hmacVerify } from "../lib/crypto";
import type { SignedRequest, SignPartOptions, SignPutOptions, UrlSigner } from "./signer";

/** The path prefix of the Worker's own signed storage route (`src/routes/storage.ts`). */
export const STORAGE_PATH = "/v1/storage/";

/**
 * What a Worker-signed URL grants: one method on one key until `expires`, with the PUT constraints. `POST` on a
 * job's video key asks for the part URLs of a video too large for its single PUT (src/storage/output.ts).
 */
export interface StorageGrant {
	method: "PUT" | "GET" | "POST";
	key: string;
	/** Unix seconds. */
	expires: number;
	/** Content-Type the PUT must carry. */
	ct?: string;
	/** Exact byte count the PUT must carry. */
	size?: number;
	/** Largest byte count the PUT may carry. */
	max?: number;
	/** A multipart part: its number and the R2 multipart upload id it belongs to. */
	part?: number;
	uploadId?: string;
}

/** Why a signed URL was refused; the route turns each into a problem. */
export type GrantFailure = "malformed" | "bad_signature" | "expired";

/**
 * The string the HMAC covers: every field on its own line, absent ones empty. `verify` refuses control
 * characters in the key and `ct`, so no value can smuggle a line break and shift one field into another.
 */
function canonical(grant: StorageGrant): string {
	// Part fields are appended only when present, so URLs signed before parts existed stay valid.
	const part = grant.part === undefined ? [] : [String(grant.part), grant.uploadId ?? ""];
	return [
		grant.method,
		grant.key,
		String(grant.expires),
		grant.ct ?? "",
		grant.size === undefined ? "" : String(grant.size),
		grant.max === undefined ? "" : String(grant.max),
		...part,
	].join("\n");
}

/** Encodes each path segment of an object key, keeping the slashes. */
export function encodeKeyPath(key: string): string {
	return key.split("/").map(encodeURIComponent).join("/");
}

/** Decodes a path made by `encodeKeyPath`; null when the encoding is broken. */
export function decodeKeyPath(path: string): string | null {
	try {
		return path.split("/").map(decodeURIComponent).join("/");
	} catch {
		return null;
	}
}

const INT = /^(0|[1-9][0-9]{0,15})$/;

const hasControlChars = (s: string) => [...s].some((ch) => (ch.codePointAt(0) ?? 0) < 0x20 || ch === "\x7f");

function intParam(value: string | null): number | undefined | null {
	if (value === null) return undefined;
	return INT.test(value) ? Number(value) : null;
}

/**
 * URLs on this Worker's `/v1/storage/<key>` route, signed with HMAC-SHA256 over the method, key, expiry and
 * PUT constraints. The signature is the only credential, so the URL must be treated as a secret.
 */
export class WorkerUrlSigner implements UrlSigner {
	readonly kind = "worker" as const;
	readonly #secret: string;
	readonly #origin: string;
	readonly #now: () => number;

	constructor(secret: string, origin: string, now: () => number = Date.now) {
		if (!secret) throw new Error("SIGNING_SECRET is not set");
		this.#secret = secret;
		this.#origin = origin.replace(/\/+$/, "");
		this.#now = now;
	}

	/** A URL that stores exactly `size` (or at most `maxSize`) bytes of `contentType` at `key`. */
	async signPut(key: string, options: SignPutOptions): Promise<SignedRequest> {
		const grant: StorageGrant = {
			method: "PUT",
			key,
			expires: this.#expiry(options.expiresInS),
			ct: options.contentType,
			size: options.size,
			max: options.size === undefined ? options.maxSize : undefined,
		};
		return {
			method: "PUT",
			url: await this.#url(grant),
			headers: { "content-type": options.contentType },
			expires_at: new Date(grant.expires * 1000).toISOString(),
		};
	}

	/** A URL that stores exactly `size` (or at most `maxSize`) bytes as part `partNumber` of the R2 multipart upload `uploadId`. */
	async signPart(key: string, uploadId: string, partNumber: number, options: SignPartOptions): Promise<SignedRequest> {
		const grant: StorageGrant = {
			method: "PUT",
			key,
			expires: this.#expiry(options.expiresInS),
			size: options.size,
			max: options.size === undefined ? options.maxSize : undefined,
			part: partNumber,
			uploadId,
		};
		return {
			method: "PUT",
			url: await this.#url(grant),
			headers: {},
			expires_at: new Date(grant.expires * 1000).toISOString(),
		};
	}

	/** A URL that POSTs to `key`: for a job's video, the request for its part URLs (src/routes/storage.ts). */
	async signPost(
		key: string,
		options: { expiresInS: number },
	): Promise<Omit<SignedRequest, "method"> & { method: "POST" }> {
		const grant: StorageGrant = { method: "POST", key, expires: this.#expiry(options.expiresInS) };
		return {
			method: "POST",
			url: await this.#url(grant),
			headers: { "content-type": "application/json" },
			expires_at: new Date(grant.expires * 1000).toISOString(),
		};
	}

	/** A URL that reads `key` with GET or HEAD, ranges included. */
	async signGet(key: string, options: { expiresInS: number }): Promise<SignedRequest> {
		const grant: StorageGrant = { method: "GET", key, expires: this.#expiry(options.expiresInS) };
		return {
			method: "GET",
			url: await this.#url(grant),
			headers: {},
			expires_at: new Date(grant.expires * 1000).toISOString(),
		};
	}

	/**
	 * Checks a signed URL's query against `key`. The signature is checked before the expiry so a tampered
	 * `expires` reads as tampering, not as expired.
	 */
	async verify(
		key: string,
		query: URLSearchParams,
	): Promise<{ ok: true; grant: StorageGrant } | { ok: false; reason: GrantFailure }> {
		const method = query.get("method");
		const sig = query.get("sig");
		const expires = intParam(query.get("expires"));
		const size = intParam(query.get("size"));
		const max = intParam(query.get("max"));
		if (
			(method !== "PUT" && method !== "GET" && method !== "POST") ||
			!sig ||
			expires === undefined ||
			expires === null
		) {
			return { ok: false, reason: "malformed" };
		}
		const ct = query.get("ct") ?? undefined;
		const part = intParam(query.get("part"));
		const uploadId = query.get("upload_id") ?? undefined;
		if (part === null || (part === undefined) !== (uploadId === undefined)) return { ok: false, reason: "malformed" };
		if (uploadId !== undefined && hasControlChars(uploadId)) return { ok: false, reason: "malformed" };
		if (size === null || max === null || hasControlChars(key) || (ct !== undefined && hasControlChars(ct))) {
			return { ok: false, reason: "malformed" };
		}
		const grant: StorageGrant = { method, key, expires, ct, size, max, part, uploadId };
		if (!(await hmacVerify(this.#secret, canonical(grant), sig))) return { ok: false, reason: "bad_signature" };
		if (expires * 1000 <= this.#now()) return { ok: false, reason: "expired" };
		return { ok: true, grant };
	}

	#expiry(expiresInS: number): number {
		return Math.floor(this.#now() / 1000) + Math.max(1, Math.floor(expiresInS));
	}

	async #url(grant: StorageGrant): Promise<string> {
		const query = new URLSearchParams({ method: grant.method, expires: String(grant.expires) });
		if (grant.ct !== undefined) query.set("ct", grant.ct);
		if (grant.size !== undefined) query.set("size", String(grant.size));
		if (grant.max !== undefined) query.set("max", String(grant.max));
		if (grant.part !== undefined) query.set("part", String(grant.part));
		if (grant.uploadId !== undefined) query.set("upload_id", grant.uploadId);
		query.set("sig", await hmacSign(this.#secret, canonical(grant)));
		return `${this.#origin}${STORAGE_PATH}${encodeKeyPath(grant.key)}?${query}`;
	}
}
