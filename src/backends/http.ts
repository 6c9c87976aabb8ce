/** How the adapters talk to backends: JSON requests with a timeout on every call, and readers of the answers. */

/** What every backend adapter sends: JSON, an optional bearer token, and a timeout on every call. */
export interface BackendRequestOptions {
	method: "GET" | "POST";
	bearer?: string;
	body?: unknown;
	timeoutMs: number;
}

/** A JSON request to a backend. Rejects only on network errors and timeouts; HTTP statuses are the caller's. */
export function backendRequest(url: string, options: BackendRequestOptions): Promise<Response> {
	const headers: Record<string, string> = { accept: "application/json" };
	if (options.bearer) headers.authorization = `Bearer ${options.bearer}`;
	if (options.body !== undefined) headers["content-type"] = "application/json";
	return fetch(url, {
		method: options.method,
		headers,
		body: options.body === undefined ? undefined : JSON.stringify(options.body),
		signal: AbortSignal.timeout(options.timeoutMs),
	});
}

/** The body as JSON, or `undefined` when it is not JSON (a proxy's HTML error page, an empty body). */
export async function readJson(res: Response): Promise<unknown> {
	try {
		return await res.json();
	} catch {
		return undefined;
	}
}

type Json = Record<string, unknown>;

/** A JSON object (not an array, not null): what every backend's answers are read as. */
export function isObject(v: unknown): v is Json {
	return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A finite number from an answer's field, else undefined. */
export const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/** A string from an answer's field, else undefined. */
export const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
