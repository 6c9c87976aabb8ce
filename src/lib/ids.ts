const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz";

/** A random id with a type prefix (`job_…`, `upl_…`, `key_…`): 128 bits, lowercase base36. */
export function newId(prefix: "job" | "upl" | "key" | "acct" | "req" | "msg" | "att"): string {
	const bytes = crypto.getRandomValues(new Uint8Array(20));
	let out = "";
	for (const b of bytes) out += ALPHABET[b % 36];
	return `${prefix}_${out}`;
}

export function base64url(bytes: Uint8Array): string {
	let s = "";
	for (const b of bytes) s += String.fromCharCode(b);
	return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

export function hex(bytes: ArrayBuffer | Uint8Array): string {
	const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
	let out = "";
	for (const b of view) out += b.toString(16).padStart(2, "0");
	return out;
}

export async function sha256Hex(text: string): Promise<string> {
	return hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

export function nowIso(): string {
	return new Date().toISOString();
}
