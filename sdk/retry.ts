// When and how long to wait before retrying a request: network errors, 5xx and 429 are worth another try.

export interface RetryOptions {
	/** Retries after the first attempt. */
	maxRetries: number;
	/** The first backoff step, in ms; doubled per attempt, with full jitter. */
	baseDelayMs: number;
	/** The longest wait between attempts, Retry-After included, in ms. */
	maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { maxRetries: 4, baseDelayMs: 500, maxDelayMs: 30_000 };

/** Statuses that a later identical request may well get past. */
export function isRetryableStatus(status: number): boolean {
	return status === 429 || status === 502 || status === 503 || status === 504 || status === 500;
}

/** `Retry-After` as delta-seconds or an HTTP date, in ms from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
	if (!value) return undefined;
	const trimmed = value.trim();
	if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
	const at = Date.parse(trimmed);
	return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The wait before retry number `attempt` (0-based): the server's Retry-After if it gave one, else backoff. */
export function retryDelayMs(
	attempt: number,
	retryAfterMs: number | undefined,
	opts: RetryOptions,
	random = Math.random,
): number {
	if (retryAfterMs !== undefined) return Math.min(retryAfterMs, opts.maxDelayMs);
	const ceiling = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** attempt);
	// Full jitter: clients that failed together do not all come back at the same instant.
	return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
	return new Promise((resolve, reject) => {
		if (signal?.aborted) return reject(signal.reason);
		const timer = setTimeout(() => {
			signal?.removeEventListener("abort", onAbort);
			resolve();
		}, ms);
		const onAbort = () => {
			clearTimeout(timer);
			reject(signal?.reason);
		};
		signal?.addEventListener("abort", onAbort, { once: true });
	});
}

/**
 * Runs `attempt` until it returns a response that is not retryable, or the retries are spent (then the last
 * response is returned, or the last network error thrown). An abort is never retried.
 */
export async function fetchWithRetries(
	attempt: () => Promise<Response>,
	opts: RetryOptions,
	signal?: AbortSignal,
): Promise<Response> {
	for (let n = 0; ; n++) {
		let res: Response | undefined;
		try {
			res = await attempt();
		} catch (err) {
			if (signal?.aborted || n >= opts.maxRetries) throw err;
			await sleep(retryDelayMs(n, undefined, opts), signal);
			continue;
		}
		if (!isRetryableStatus(res.status) || n >= opts.maxRetries) return res;
		const wait = retryDelayMs(n, parseRetryAfter(res.headers.get("retry-after")), opts);
		// Free the connection before waiting.
		await res.body?.cancel().catch(() => {});
		await sleep(wait, signal);
	}
}
