import { getAccountSecrets } from "../db/account-secrets";
import type { JobView } from "../schemas/jobs";
import { DEFAULT_SHARE_TTL_S, shareExpiry, signShareUrl } from "./links";

/**
 * Adds `share_url` (24 h) to the succeeded jobs among `views`, all of one account: one secret read for the page,
 * one HMAC per job. Views of other statuses are returned unchanged.
 */
export async function withShareUrls(env: Env, accountId: string, views: JobView[], origin: string): Promise<JobView[]> {
	if (!views.some((v) => v.status === "succeeded")) return views;
	const { share } = await getAccountSecrets(env, accountId);
	const exp = shareExpiry(DEFAULT_SHARE_TTL_S);
	return Promise.all(
		views.map(async (v) =>
			v.status === "succeeded" ? { ...v, share_url: await signShareUrl(share, origin, v.id, exp) } : v,
		),
	);
}

/** One job's 24 h `share_url`. */
export async function shareUrlOf(env: Env, accountId: string, jobId: string, origin: string): Promise<string> {
	const { share } = await getAccountSecrets(env, accountId);
	return signShareUrl(share, origin, jobId, shareExpiry(DEFAULT_SHARE_TTL_S));
}
