// Verifies webhook deliveries per the Standard Webhooks spec (https://www.standardwebhooks.com): HMAC-SHA256
// over `${id}.${timestamp}.${body}` with a `whsec_`-prefixed base64 secret. WebCrypto only, so the same code
// runs in Node ≥ 22, browsers and Workers.

export class WebhookVerificationError extends Error {
	constructor(message: string) {
		super(message);
		this.name = "WebhookVerificationError";
	}
}

export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

export interface VerifyWebhookOptions {
	/** How far the timestamp may be from now, in seconds (replay protection). Default 300. */
	toleranceS?: number;
	/** The current time, for tests. */
	now?: Date;
}

const encoder = new TextEncoder();

function header(headers: WebhookHeaders, name: string): string | undefined {
	if (headers instanceof Headers) return headers.get(name) ?? undefined;
	for (const [k, v] of Object.entries(headers)) {
		if (k.toLowerCase() === name) return Array.isArray(v) ? v.join(" ") : v;
	}
	return undefined;
}

function base64ToBytes(b64: string): Uint8Array {
	const bin = atob(b64);
	return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function bytesToBase64(bytes: Uint8Array): string {
	let bin = "";
	for (const b of bytes) bin += String.fromCharCode(b);
	return btoa(bin);
}

/** Compares in time independent of where the inputs first differ. */
function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
	if (a.length !== b.length) return false;
	let diff = 0;
	for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
	return diff === 0;
}

async function hmacKey(secret: string): Promise<CryptoKey> {
	const raw = secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret;
	let bytes: Uint8Array;
	try {
		bytes = base64ToBytes(raw);
	} catch {
		throw new WebhookVerificationError("The webhook secret is not base64 (expected `whsec_…`).");
	}
	return crypto.subtle.importKey("raw", bytes as Uint8Array<ArrayBuffer>, { name: "HMAC", hash: "SHA-256" }, false, [
		"sign",
	]);
}

async function signature(key: CryptoKey, id: string, timestamp: string, body: string): Promise<Uint8Array> {
	return new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(`${id}.${timestamp}.${body}`)));
}

/** The `webhook-signature` value (`v1,<base64>`) for a delivery: what a sender computes. */
export async function signWebhook(
	id: string,
	timestamp: number | string,
	body: string,
	secret: string,
): Promise<string> {
	const sig = await signature(await hmacKey(secret), id, String(timestamp), body);
	return `v1,${bytesToBase64(sig)}`;
}

/**
 * Checks a delivery's `webhook-id`, `webhook-timestamp` and `webhook-signature` headers against the raw body
 * (verify before parsing: re-serialised JSON would not match). Returns the parsed payload; throws
 * `WebhookVerificationError` when anything does not check out.
 */
export async function verifyWebhook(
	payload: string | Uint8Array,
	headers: WebhookHeaders,
	secret: string,
	options: VerifyWebhookOptions = {},
): Promise<unknown> {
	const id = header(headers, "webhook-id");
	const timestamp = header(headers, "webhook-timestamp");
	const signatures = header(headers, "webhook-signature");
	if (!id || !timestamp || !signatures)
		throw new WebhookVerificationError("Missing webhook-id, -timestamp or -signature.");
	if (!/^\d+$/.test(timestamp)) throw new WebhookVerificationError("The webhook timestamp is not a number.");
	const nowS = Math.floor((options.now ?? new Date()).getTime() / 1000);
	const tolerance = options.toleranceS ?? 300;
	if (Math.abs(nowS - Number(timestamp)) > tolerance) {
		throw new WebhookVerificationError("The webhook timestamp is outside the tolerance (a replay, or a skewed clock).");
	}
	const body = typeof payload === "string" ? payload : new TextDecoder().decode(payload);
	const expected = await signature(await hmacKey(secret), id, timestamp, body);
	// Several signatures may be sent while a secret is rotated: any valid v1 one will do.
	for (const candidate of signatures.split(" ")) {
		const [version, value] = candidate.split(",", 2);
		if (version !== "v1" || !value) continue;
		let given: Uint8Array;
		try {
			given = base64ToBytes(value);
		} catch {
			continue;
		}
		if (timingSafeEqual(given, expected)) return JSON.parse(body);
	}
	throw new WebhookVerificationError("No matching webhook signature.");
}
