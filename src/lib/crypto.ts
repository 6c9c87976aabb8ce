import { base64url } from "./ids";

const encoder = new TextEncoder();

/** Compares two strings in time independent of where they differ (via HMAC of both with a random key). */
export async function timingSafeEqualStr(a: string, b: string): Promise<boolean> {
	const key = (await crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, ["sign"])) as CryptoKey;
	const [ha, hb] = await Promise.all([
		crypto.subtle.sign("HMAC", key, encoder.encode(a)),
		crypto.subtle.sign("HMAC", key, encoder.encode(b)),
	]);
	return crypto.subtle.timingSafeEqual(ha, hb);
}

const hmacKeys = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
	let key = hmacKeys.get(secret);
	if (!key) {
		key = crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, [
			"sign",
			"verify",
		]);
		hmacKeys.set(secret, key);
	}
	return key;
}

/** HMAC-SHA256 of `message`, base64url. */
export async function hmacSign(secret: string, message: string): Promise<string> {
	const sig = await crypto.subtle.sign("HMAC", await hmacKey(secret), encoder.encode(message));
	return base64url(new Uint8Array(sig));
}

/** Verifies an HMAC made by `hmacSign`, in constant time. */
export async function hmacVerify(secret: string, message: string, signature: string): Promise<boolean> {
	return timingSafeEqualStr(await hmacSign(secret, message), signature);
}
