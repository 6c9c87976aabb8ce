// The few Cloudflare API v4 routes `npm run deploy` checks before handing over to wrangler: R2 buckets and their
// CORS rules, D1 databases, and a Worker's secret names. Base URL from CLOUDFLARE_API_BASE_URL, as wrangler
// reads it, so the same emulator stands in for both.
import { HttpError, jsonClient } from "./http-json.mjs";

export const CLOUDFLARE_API_BASE = "https://api.cloudflare.com/client/v4";

/** @param {{ token: string, accountId: string, base?: string, fetch?: typeof fetch }} options */
export function cloudflareApi({ token, accountId, base = CLOUDFLARE_API_BASE, fetch: fetchImpl }) {
	const http = jsonClient({ base, token, name: "Cloudflare API", fetch: fetchImpl });
	const acct = `/accounts/${encodeURIComponent(accountId)}`;
	/** Cloudflare wraps every answer in `{ success, errors, result }`. */
	const result = async (p) => {
		const body = await p;
		if (body && body.success === false) {
			const msg = (body.errors ?? []).map((e) => `${e.code}: ${e.message}`).join("; ");
			throw new HttpError(`Cloudflare API: ${msg || "request failed"}`, 200, body);
		}
		return body?.result;
	};
	return {
		async listBuckets() {
			const r = await result(http.get(`${acct}/r2/buckets`));
			return Array.isArray(r?.buckets) ? r.buckets : [];
		},
		createBucket: (name) => result(http.post(`${acct}/r2/buckets`, { name })),
		async getBucketCors(name) {
			try {
				return (await result(http.get(`${acct}/r2/buckets/${encodeURIComponent(name)}/cors`)))?.rules ?? [];
			} catch (err) {
				if (err.status === 404) return [];
				throw err;
			}
		},
		putBucketCors: (name, rules) => result(http.put(`${acct}/r2/buckets/${encodeURIComponent(name)}/cors`, { rules })),
		async findDatabase(name) {
			const r = await result(http.get(`${acct}/d1/database?name=${encodeURIComponent(name)}`));
			return (Array.isArray(r) ? r : []).find((d) => d.name === name) ?? null;
		},
		createDatabase: (name) => result(http.post(`${acct}/d1/database`, { name })),
		/** Names of the Worker's secrets; [] when the Worker does not exist yet. */
		async listSecretNames(script) {
			try {
				const r = await result(http.get(`${acct}/workers/scripts/${encodeURIComponent(script)}/secrets`));
				return (Array.isArray(r) ? r : []).map((s) => s.name);
			} catch (err) {
				if (err.status === 404) return [];
				throw err;
			}
		},
	};
}

/**
 * The bucket's CORS rules for browser uploads and downloads: the origins allowed to PUT and GET signed URLs
 * directly (R2's S3-presigned flavour), with the headers the signatures cover.
 * @param {string[]} origins
 */
export function corsRules(origins) {
	return [
		{
			allowed: {
				origins: origins.length ? origins : ["*"],
				methods: ["GET", "PUT", "HEAD"],
				headers: [
					"content-type",
					"content-length",
					"content-md5",
					"x-amz-content-sha256",
					"x-amz-date",
					"authorization",
					"range",
				],
			},
			exposeHeaders: ["ETag", "Content-Length", "Content-Range", "Accept-Ranges"],
			maxAgeSeconds: 3600,
		},
	];
}
