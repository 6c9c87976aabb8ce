/**
 * The Worker under test, as a client reaches it: requests through its fetch handler, the admin token, an API key
 * per account, and uploads through the uploads API.
 */
import { exports } from "cloudflare:workers";
import { pngBytes, wavBytes } from "./media";

export const ORIGIN = "http://reelgate.test";
export const ADMIN = { authorization: "Bearer test-admin-token", "content-type": "application/json" };

/** A request to the Worker: a path on ORIGIN, or a full URL (a signed one). */
export function call(path: string, init: RequestInit = {}): Promise<Response> {
	return exports.default.fetch(new Request(path.startsWith("http") ? path : `${ORIGIN}${path}`, init));
}

/** A fresh API key for `account`; returns headers that authenticate with it. */
export async function newAccount(account: string): Promise<Record<string, string>> {
	const res = await call("/v1/admin/keys", {
		method: "POST",
		headers: ADMIN,
		body: JSON.stringify({ name: `test-${account}`, account }),
	});
	if (res.status !== 201) throw new Error(`key creation failed: ${res.status} ${await res.text()}`);
	const { key } = (await res.json()) as { key: string };
	return { authorization: `Bearer ${key}`, "content-type": "application/json" };
}

/** A key of `account` with the `account:admin` scope (which no key gets unless asked for); returns its headers. */
export async function newAdminKey(account: string): Promise<Record<string, string>> {
	const res = await call("/v1/admin/keys", {
		method: "POST",
		headers: ADMIN,
		body: JSON.stringify({
			name: `test-${account}-admin`,
			account,
			scopes: ["jobs:read", "jobs:write", "account:admin"],
		}),
	});
	if (res.status !== 201) throw new Error(`key creation failed: ${res.status} ${await res.text()}`);
	const { key } = (await res.json()) as { key: string };
	return { authorization: `Bearer ${key}`, "content-type": "application/json" };
}

/**
 * The account's webhook signing secret, as a receiver gets it: rotated by an `account:admin` key, the only answer
 * that shows it. Webhooks sent from then on verify with it.
 */
export async function revealWebhookSecret(account: string): Promise<string> {
	const res = await call("/v1/webhooks/secret/rotate", { method: "POST", headers: await newAdminKey(account) });
	if (res.status !== 200) throw new Error(`rotation failed: ${res.status} ${await res.text()}`);
	return ((await res.json()) as { secret: string }).secret;
}

/** Test media from the shared builders (media.ts). */
export const PNG = pngBytes();
export const wav = (seconds = 0.1): Uint8Array => wavBytes({ seconds });

/** Uploads bytes through the uploads API (create, PUT to the signed URL, complete); returns the `upl_…` id. */
export async function upload(
	auth: Record<string, string>,
	bytes: Uint8Array,
	contentType: string,
	filename: string,
	complete = true,
): Promise<string> {
	const created = await call("/v1/uploads", {
		method: "POST",
		headers: auth,
		body: JSON.stringify({ filename, content_type: contentType, size: bytes.byteLength }),
	});
	if (created.status !== 201) throw new Error(`upload create failed: ${created.status} ${await created.text()}`);
	const u = (await created.json()) as { id: string; upload: { url: string; headers: Record<string, string> } };
	const put = await call(u.upload.url, { method: "PUT", headers: u.upload.headers, body: bytes });
	if (!put.ok) throw new Error(`upload PUT failed: ${put.status} ${await put.text()}`);
	if (complete) {
		const done = await call(`/v1/uploads/${u.id}/complete`, { method: "POST", headers: auth });
		if (done.status !== 200) throw new Error(`upload complete failed: ${done.status} ${await done.text()}`);
	}
	return u.id;
}
