import { base64url, sha256Hex } from "../lib/ids";

/** Readable prefix of every key, so a leaked one is recognisable in logs and by secret scanners. */
export const KEY_PREFIX = "rg_live_";

/** A new secret key: the prefix and 32 random bytes, base64url. */
export function generateApiKey(): string {
	return KEY_PREFIX + base64url(crypto.getRandomValues(new Uint8Array(32)));
}

/** What is stored: the key is high-entropy, so a plain SHA-256 is enough (no slow KDF needed). */
export function hashApiKey(key: string): Promise<string> {
	return sha256Hex(key);
}

/** The part shown in listings: the prefix and the first few characters. */
export function displayPrefix(key: string): string {
	return key.slice(0, KEY_PREFIX.length + 6);
}

/** Cheap shape check before any database read. */
export function looksLikeApiKey(key: string): boolean {
	return key.startsWith(KEY_PREFIX) && /^[A-Za-z0-9_-]{43}$/.test(key.slice(KEY_PREFIX.length));
}
