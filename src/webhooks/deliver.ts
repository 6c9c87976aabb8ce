import { parseRetryAfter } from "../lib/retry-after";
import { webhookHeaders } from "./sign";

/** Per-attempt limit: the spec suggests 15–30 s; the short end keeps a job's alarm step bounded. */
export const ATTEMPT_TIMEOUT_MS = 15_000;

/** One message as stored: the body is fixed at enqueue, so every retry sends the same bytes under the same id. */
export interface OutboundMessage {
	id: string;
	url: string;
	body: string;
}

/**
 * How one attempt went. Per the spec only a 2xx is success and a 410 means "stop sending"; everything else
 * (3xx, 4xx, 5xx, network, timeout) is retried on the schedule, 429 and 503 no sooner than their Retry-After.
 */
export type AttemptOutcome =
	| { kind: "delivered"; statusCode: number }
	| { kind: "retry"; statusCode?: number; error: string; retryAfterMs?: number }
	| { kind: "gone"; statusCode: 410 };

/**
 * Sends one signed attempt. Never throws: every failure comes back classified. Redirects are not followed (a 3xx
 * is a failure per the spec, and following one would send the signed body somewhere the account never named).
 */
export async function attemptDelivery(
	message: OutboundMessage,
	secrets: readonly string[],
	options: { timeoutMs?: number; now?: () => number } = {},
): Promise<AttemptOutcome> {
	const timestamp = Math.floor((options.now ?? Date.now)() / 1000);
	let res: Response;
	try {
		const headers = await webhookHeaders(secrets, message.id, timestamp, message.body);
		res = await fetch(message.url, {
			method: "POST",
			headers: { ...headers, "content-type": "application/json", "user-agent": "Reelgate-Webhooks/1" },
			body: message.body,
			redirect: "manual",
			signal: AbortSignal.timeout(options.timeoutMs ?? ATTEMPT_TIMEOUT_MS),
		});
	} catch (err) {
		const name = err instanceof Error ? err.name : "";
		return {
			kind: "retry",
			error: name === "TimeoutError" || name === "AbortError" ? "timed out" : "could not connect",
		};
	}
	// The body is not needed; release the connection.
	await res.body?.cancel().catch(() => undefined);
	const status = res.status;
	if (status >= 200 && status < 300) return { kind: "delivered", statusCode: status };
	if (status === 410) return { kind: "gone", statusCode: 410 };
	const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(res.headers.get("retry-after")) : undefined;
	return { kind: "retry", statusCode: status, error: `HTTP ${status}`, retryAfterMs };
}
