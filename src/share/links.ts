import { hmacSign, hmacVerify } from "../lib/crypto";

/**
 * Signed share links for a finished video: `/v1/share/{job_id}/video.mp4?exp=<unix s>&sig=<HMAC>`. The signature
 * (HMAC-SHA256 with the account's share secret, src/db/account-secrets.ts) is the only credential, so a `<video>`
 * tag or a download manager can play it without an API key; rotating the share secret revokes every link at once.
 */

export const DEFAULT_SHARE_TTL_S = 24 * 3600;
export const MIN_SHARE_TTL_S = 60;
export const MAX_SHARE_TTL_S = 7 * 24 * 3600;

export type ShareRefusal = "malformed" | "bad_signature" | "expired";

export const sharePath = (jobId: string): string => `/v1/share/${jobId}/video.mp4`;

/** The string the HMAC covers; versioned so the scheme can change without old links verifying by accident. */
const canonical = (jobId: string, exp: number) => `share:v1\n${jobId}\n${exp}`;

/** An absolute share URL valid until `expiresAtS` (Unix seconds). */
export async function signShareUrl(secret: string, origin: string, jobId: string, expiresAtS: number): Promise<string> {
	const sig = await hmacSign(secret, canonical(jobId, expiresAtS));
	return `${origin.replace(/\/+$/, "")}${sharePath(jobId)}?exp=${expiresAtS}&sig=${sig}`;
}

/** Expiry for a link made now that lives `ttlS` seconds. */
export const shareExpiry = (ttlS: number, nowMs = Date.now()): number => Math.floor(nowMs / 1000) + ttlS;

/**
 * Checks a share link's query. The signature is checked before the expiry, so an edited `exp` reads as tampering
 * rather than as expired.
 */
export async function verifyShare(
	secret: string,
	jobId: string,
	query: URLSearchParams,
	nowMs = Date.now(),
): Promise<{ ok: true; exp: number } | { ok: false; reason: ShareRefusal }> {
	const expRaw = query.get("exp");
	const sig = query.get("sig");
	if (!expRaw || !/^[1-9][0-9]{0,11}$/.test(expRaw) || !sig || sig.length > 128) {
		return { ok: false, reason: "malformed" };
	}
	const exp = Number(expRaw);
	if (!(await hmacVerify(secret, canonical(jobId, exp), sig))) return { ok: false, reason: "bad_signature" };
	if (exp * 1000 <= nowMs) return { ok: false, reason: "expired" };
	return { ok: true, exp };
}
