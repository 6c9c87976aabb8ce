import { hmacSign, timingSafeEqualStr } from "../lib/crypto";

/**
 * The per-job secret in a RunPod webhook URL. RunPod does not sign its webhook calls, so the URL carries a token
 * only the Worker can make: an HMAC of the job id under SIGNING_SECRET (nothing to store; a token for one job is
 * useless for another).
 */
export function runpodWebhookToken(signingSecret: string, jobId: string): Promise<string> {
	return hmacSign(signingSecret, `runpod-webhook:${jobId}`);
}

/** Checks a webhook token in constant time. */
export async function verifyRunpodWebhookToken(signingSecret: string, jobId: string, token: string): Promise<boolean> {
	return timingSafeEqualStr(await runpodWebhookToken(signingSecret, jobId), token);
}

/** The webhook URL a RunPod job calls when it reaches a terminal state. */
export async function runpodWebhookUrl(signingSecret: string, origin: string, jobId: string): Promise<string> {
	const token = await runpodWebhookToken(signingSecret, jobId);
	return `${origin.replace(/\/+$/, "")}/v1/internal/runpod/${encodeURIComponent(jobId)}?token=${token}`;
}
