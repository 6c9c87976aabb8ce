import { configOf } from "../../src/config";
import { getAccountSecrets, signingSecrets } from "../../src/db/account-secrets";
import type { JobSpec } from "../../src/jobs/record";
import type { Logger } from "../../src/lib/logger";
import { DEFAULT_SHARE_TTL_S, shareExpiry, signShareUrl } from "../../src/share/links";
import { attemptDelivery } from "../../src/webhooks/deliver";
import { checkWebhookUrl } from "../../src/webhooks/url";
import type { WebhookOutbox } from "./outbox";

/** Adds the 24 h `share_url` to a `job.succeeded` payload's job, as GET /v1/jobs/{id} shows it. */
async function withShareUrl(body: string, shareSecret: string, spec: JobSpec): Promise<string> {
	const payload = JSON.parse(body) as { data?: Record<string, unknown> };
	if (!payload.data || "share_url" in payload.data) return body;
	const exp = shareExpiry(DEFAULT_SHARE_TTL_S);
	payload.data.share_url = await signShareUrl(shareSecret, spec.origin, spec.id, exp);
	return JSON.stringify(payload);
}

/**
 * Sends the job's due deliveries (signed with the account's current secrets, read at send time so a rotation
 * applies to retries too) and records each outcome. Never throws: a delivery problem must not stop the job loop.
 * Returns whether anything was due.
 */
export async function sendDueDeliveries(
	outbox: WebhookOutbox,
	env: Env,
	spec: JobSpec,
	log: Logger,
	nowMs = Date.now(),
): Promise<boolean> {
	const due = outbox.due(nowMs);
	if (due.length === 0) return false;
	const webhook = spec.webhook;
	const target = webhook ? checkWebhookUrl(webhook.url, configOf(env).allowLoopbackWebhooks) : null;
	if (!webhook || !target?.ok) {
		const error = target && !target.ok ? target.message : "the job has no webhook";
		for (const d of due) outbox.fail(d.id, error);
		return true;
	}
	let secrets: string[];
	try {
		const account = await getAccountSecrets(env, spec.account_id);
		secrets = signingSecrets(account, nowMs);
		for (const d of due) {
			if (d.type !== "job.succeeded" || d.attempts > 0) continue;
			// Signing needs the account's share secret (async), so the link joins the payload at its first attempt;
			// stored with the body, so every retry still sends the same bytes.
			d.body = await withShareUrl(d.body, account.share, spec);
			outbox.setBody(d.id, d.body);
		}
	} catch (err) {
		log.error("webhook_secret_unavailable", { error: err instanceof Error ? err.message : String(err) });
		for (const d of due) outbox.record(d.id, { kind: "retry", error: "signing secret unavailable" }, Date.now());
		return true;
	}
	const outcomes = await Promise.all(
		due.map((d) => attemptDelivery({ id: d.id, url: webhook.url, body: d.body }, secrets)),
	);
	const at = Date.now();
	due.forEach((d, i) => {
		const outcome = outcomes[i];
		if (!outcome) return;
		outbox.record(d.id, outcome, at);
		// The host only: a webhook URL may carry a token in its path or query.
		log.info("webhook_attempt", {
			webhook_id: d.id,
			type: d.type,
			outcome: outcome.kind,
			status_code: "statusCode" in outcome ? outcome.statusCode : undefined,
			host: target.url.host,
		});
	});
	return true;
}
