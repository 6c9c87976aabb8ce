// A small JSON-over-HTTP helper for the deploy scripts: bearer auth, timeouts, and errors that say what failed
// without ever echoing the key.

/** An HTTP call that failed; `status` is 0 when no answer came back. */
export class HttpError extends Error {
	/**
	 * @param {string} message
	 * @param {number} status
	 * @param {unknown} body
	 */
	constructor(message, status, body) {
		super(message);
		this.name = "HttpError";
		this.status = status;
		this.body = body;
	}
}

/** `abcd…wxyz` for a secret: enough to recognise it, never enough to use it. */
export function mask(secret) {
	if (!secret) return "(not set)";
	const s = String(secret);
	return s.length <= 8 ? "****" : `${s.slice(0, 4)}…${s.slice(-2)}`;
}

/** Removes every occurrence of the given secrets from a text (server error bodies sometimes echo them). */
export function scrub(text, secrets) {
	let out = String(text);
	for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join("****");
	return out;
}

/**
 * A client for one JSON API.
 * @param {{ base: string, token?: string, name: string, timeoutMs?: number, fetch?: typeof fetch }} options
 */
export function jsonClient({ base, token, name, timeoutMs = 30_000, fetch: fetchImpl = fetch }) {
	const root = base.replace(/\/+$/, "");
	/**
	 * @param {string} method
	 * @param {string} path
	 * @param {unknown} [body]
	 * @returns {Promise<any>}
	 */
	async function request(method, path, body) {
		const headers = { accept: "application/json" };
		if (token) headers.authorization = `Bearer ${token}`;
		if (body !== undefined) headers["content-type"] = "application/json";
		let res;
		try {
			res = await fetchImpl(`${root}${path}`, {
				method,
				headers,
				body: body === undefined ? undefined : JSON.stringify(body),
				signal: AbortSignal.timeout(timeoutMs),
			});
		} catch (err) {
			throw new HttpError(`${name}: ${method} ${path} failed: ${scrub(err.message, [token])}`, 0, null);
		}
		const text = await res.text();
		let parsed = null;
		try {
			parsed = text ? JSON.parse(text) : null;
		} catch {
			parsed = text;
		}
		if (!res.ok) {
			const detail = typeof parsed === "string" ? parsed : JSON.stringify(parsed);
			throw new HttpError(
				`${name}: ${method} ${path} answered ${res.status}: ${scrub(detail ?? "", [token]).slice(0, 500)}`,
				res.status,
				parsed,
			);
		}
		return parsed;
	}
	return {
		get: (path) => request("GET", path),
		post: (path, body) => request("POST", path, body ?? {}),
		put: (path, body) => request("PUT", path, body ?? {}),
		patch: (path, body) => request("PATCH", path, body ?? {}),
		delete: (path) => request("DELETE", path),
		request,
	};
}
