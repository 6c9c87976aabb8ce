/**
 * Encrypts small secrets (backend tokens, API keys) at rest with AES-256-GCM. The key is `BACKEND_SECRETS_KEY`:
 * base64 of 32 random bytes. Each value gets a fresh 96-bit IV, stored beside the ciphertext as
 * `v1.<iv b64>.<ciphertext+tag b64>`; the version prefix leaves room to rotate the scheme.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const keys = new Map<string, Promise<CryptoKey>>();

function fromBase64(b64: string): Uint8Array {
	const bin = atob(b64);
	const out = new Uint8Array(bin.length);
	for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
	return out;
}

function toBase64(bytes: Uint8Array): string {
	let s = "";
	for (const b of bytes) s += String.fromCharCode(b);
	return btoa(s);
}

export class SecretBoxError extends Error {
	override name = "SecretBoxError";
}

function importKey(keyB64: string): Promise<CryptoKey> {
	let key = keys.get(keyB64);
	if (!key) {
		let raw: Uint8Array;
		try {
			raw = fromBase64(keyB64);
		} catch {
			throw new SecretBoxError("BACKEND_SECRETS_KEY is not valid base64.");
		}
		if (raw.length !== 32) throw new SecretBoxError("BACKEND_SECRETS_KEY must be base64 of exactly 32 bytes.");
		key = crypto.subtle.importKey("raw", raw, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
		keys.set(keyB64, key);
	}
	return key;
}

/** Encrypts `plaintext` under `keyB64`. */
export async function seal(keyB64: string, plaintext: string): Promise<string> {
	const key = await importKey(keyB64);
	const iv = crypto.getRandomValues(new Uint8Array(12));
	const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, encoder.encode(plaintext));
	return `v1.${toBase64(iv)}.${toBase64(new Uint8Array(ct))}`;
}

/** Decrypts what `seal` made; throws `SecretBoxError` when the box is malformed or the key is wrong. */
export async function open(keyB64: string, box: string): Promise<string> {
	const [version, ivB64, ctB64] = box.split(".");
	if (version !== "v1" || !ivB64 || !ctB64) throw new SecretBoxError("Unknown secret box format.");
	const key = await importKey(keyB64);
	try {
		const pt = await crypto.subtle.decrypt({ name: "AES-GCM", iv: fromBase64(ivB64) }, key, fromBase64(ctB64));
		return decoder.decode(pt);
	} catch {
		throw new SecretBoxError("A secret could not be decrypted (wrong BACKEND_SECRETS_KEY?).");
	}
}

/** Seals a JSON object of secrets. */
export async function sealJson(keyB64: string, value: Record<string, string>): Promise<string> {
	return seal(keyB64, JSON.stringify(value));
}

/** Opens a JSON object sealed by `sealJson`; null or empty in → `{}` out. */
export async function openJson(keyB64: string, box: string | null): Promise<Record<string, string>> {
	if (!box) return {};
	const parsed: unknown = JSON.parse(await open(keyB64, box));
	return typeof parsed === "object" && parsed !== null ? (parsed as Record<string, string>) : {};
}
