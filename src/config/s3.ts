/**
 * R2's S3 settings (`R2_ACCOUNT_ID`, `R2_ACCESS_KEY_ID`, `R2_SECRET_ACCESS_KEY`, `R2_BUCKET`, and optionally
 * `R2_ENDPOINT`, `R2_REGION`), which turn on presigned R2 URLs (src/storage/r2-signer.ts). Pure, so the Node suite
 * that checks the presigner against a real S3 server (test/s3) reads them the same way.
 */

/** R2 S3 credentials and where to reach the S3 API. */
export interface S3Config {
	accessKeyId: string;
	secretAccessKey: string;
	bucket: string;
	/** `https://<account>.r2.cloudflarestorage.com` for R2; any S3 endpoint for tests. No trailing slash. */
	endpoint: string;
	/** `auto` for R2. */
	region: string;
}

/** The R2 S3 config from the Worker's env, or null when any of the four settings is missing. */
export function s3ConfigFrom(env: Partial<Record<string, unknown>>): S3Config | null {
	const v = (name: string) => (typeof env[name] === "string" ? (env[name] as string).trim() : "");
	const accountId = v("R2_ACCOUNT_ID");
	const accessKeyId = v("R2_ACCESS_KEY_ID");
	const secretAccessKey = v("R2_SECRET_ACCESS_KEY");
	const bucket = v("R2_BUCKET");
	if (!accountId || !accessKeyId || !secretAccessKey || !bucket) return null;
	const endpoint = (v("R2_ENDPOINT") || `https://${accountId}.r2.cloudflarestorage.com`).replace(/\/+$/, "");
	return { accessKeyId, secretAccessKey, bucket, endpoint, region: v("R2_REGION") || "auto" };
}
