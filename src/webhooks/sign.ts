/**
 * Standard Webhooks signing (spec 1.0.0, "symmetric" scheme): HMAC-SHA256 over `${id}.${timestamp}.${body}` with
 * the base64-decoded `whsec_` secret, sent as `v1,<base64 signature>`; several signatures (a key rotation) are
 * space-separated in one `webhook-signature` header.
 */

export const SECRET_PREFIX = "whsec_";
/** Random bytes in a new secret: the spec asks for 24 to 64 (192 to 512 bits). */
export const SECRET_BYTES = 32;

const encoder = new TextEncoder();

function toBase64(bytes: Uint8Array): string {
	let s = "";
	for (const b of bytes) s += String.fromCharCode(b);
	return btoa(s);
}

function fromBase64(b64: string): Uint8Array {
	const bin = atob(b64);
	const out = new Uint8Array(bin.length);
	for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
	return out;
}

/** A fresh `whsec_…` secret. */
export function newWebhookSecret(): string {
	return `${SECRET_PREFIX}${toBase64(crypto.getRandomValues(new Uint8Array(SECRET_BYTES)))}`;
}

/** The key bytes of a `whsec_…` secret (the prefix is optional, as in the reference libraries). */
export function secretKeyBytes(secret: string): Uint8Array {
	return fromBase64(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret);
}

/** `v1,<sig>` for one secret. */
export async function signOne(secret: string, id: string, timestamp: number, body: string): Promise<string> {
	const key = await crypto.subtle.importKey("raw", secretKeyBytes(secret), { name: "HMAC", hash: "SHA-256" }, false, [
		"sign",
	]);
	const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(`${id}.${timestamp}.${body}`));
	return `v1,${toBase64(new Uint8Array(mac))}`;
}

/**
 * The three Standard Webhooks headers for one attempt. `secrets` is newest first: during a rotation the receiver
 * may still hold the old secret, so each valid secret signs and the header carries every signature.
 */
export async function webhookHeaders(
	secrets: readonly string[],
	id: string,
	timestamp: number,
	body: string,
): Promise<Record<string, string>> {
	const signatures = await Promise.all(secrets.map((s) => signOne(s, id, timestamp, body)));
	return {
		"webhook-id": id,
		"webhook-timestamp": String(timestamp),
		"webhook-signature": signatures.join(" "),
	};
}
