// The chaos run's HTTP client: a client that keeps going through outages. A refused or dropped connection is
// retried after a short pause, 429 and 503 after their Retry-After, and every retry is counted by cause.

export interface ClientTally {
	/** Retries by cause: `network`, `429`, `503`, `409`, … */
	retries: Record<string, number>;
	/** Answers with a 5xx status other than 503 (the API must answer bad input with 4xx, never 5xx). */
	serverErrors: { at: number; method: string; path: string; status: number; body: string }[];
}

export interface RequestOptions {
	key?: string;
	body?: unknown;
	headers?: Record<string, string>;
	/** Give up (throw) after this instant (epoch ms). */
	until: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Statuses worth asking again: rate limited, a key still in flight, or the runtime coming up. */
const RETRY_STATUSES = new Set([409, 429, 503]);
/** Statuses a Response may not carry a body with. */
const NULL_BODY = new Set([101, 204, 205, 304]);

export class ResilientClient {
	readonly tally: ClientTally = { retries: {}, serverErrors: [] };

	constructor(
		private readonly baseUrl: string,
		/** Whether an answer may be retried (e.g. 409 only for `idempotency_in_flight`). */
		private readonly isRetryable: (status: number, body: string) => boolean = (status) => RETRY_STATUSES.has(status),
	) {}

	#count(cause: string): void {
		this.tally.retries[cause] = (this.tally.retries[cause] ?? 0) + 1;
	}

	/** The answer, once it is not a network failure or a retryable status; throws past `until`. */
	async request(method: string, path: string, options: RequestOptions): Promise<Response> {
		const headers: Record<string, string> = { ...options.headers };
		if (options.key) headers.authorization = `Bearer ${options.key}`;
		if (options.body !== undefined) headers["content-type"] = "application/json";
		let last = "";
		while (Date.now() < options.until) {
			let res: Response;
			let bytes: ArrayBuffer;
			try {
				res = await fetch(`${this.baseUrl}${path}`, {
					method,
					headers,
					body: options.body === undefined ? undefined : JSON.stringify(options.body),
					signal: AbortSignal.timeout(20_000),
				});
				// Read whole here: a runtime killed mid-answer breaks the body, not the fetch.
				bytes = await res.arrayBuffer();
			} catch (err) {
				// Connection refused or reset (the runtime is down or was killed mid-request), or no answer in time.
				last = String((err as { cause?: { code?: string } }).cause?.code ?? err);
				this.#count("network");
				await sleep(300 + Math.random() * 400);
				continue;
			}
			const body = new TextDecoder().decode(bytes);
			if (res.status >= 500 && res.status !== 503) {
				this.tally.serverErrors.push({ at: Date.now(), method, path, status: res.status, body: body.slice(0, 300) });
			}
			const retry = res.status >= 500 || (RETRY_STATUSES.has(res.status) && this.isRetryable(res.status, body));
			if (!retry)
				return new Response(NULL_BODY.has(res.status) ? null : bytes, { status: res.status, headers: res.headers });
			last = `HTTP ${res.status} ${body.slice(0, 200)}`;
			this.#count(String(res.status));
			const retryAfter = Number(res.headers.get("retry-after"));
			await sleep(Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : 500 + Math.random() * 500);
		}
		throw new Error(`${method} ${path}: no usable answer before the deadline (last: ${last})`);
	}

	async json<T>(method: string, path: string, options: RequestOptions, expect: number[]): Promise<T> {
		const res = await this.request(method, path, options);
		const text = await res.text();
		if (!expect.includes(res.status)) throw new Error(`${method} ${path}: HTTP ${res.status} ${text.slice(0, 300)}`);
		return JSON.parse(text) as T;
	}
}
