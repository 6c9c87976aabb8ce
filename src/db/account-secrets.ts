import { open, seal } from "../lib/secret-box";
import { newWebhookSecret } from "../webhooks/sign";
import { first, run } from "./sql";

/** How long the previous webhook secret keeps signing after a rotation. */
export const WEBHOOK_ROTATION_OVERLAP_MS = 24 * 3600 * 1000;

/** An account's secrets, opened. Never log or render these except `webhook` to its own account. */
export interface AccountSecrets {
	webhook: string;
	webhookPrevious: string | null;
	/** RFC 3339; the previous secret signs until then. */
	webhookPreviousUntil: string | null;
	share: string;
	createdAt: string;
	webhookRotatedAt: string | null;
}

interface Row {
	webhook_secret: string;
	webhook_previous: string | null;
	webhook_previous_until: string | null;
	share_secret: string;
	created_at: string;
	webhook_rotated_at: string | null;
}

function newShareSecret(): string {
	const bytes = crypto.getRandomValues(new Uint8Array(32));
	let s = "";
	for (const b of bytes) s += String.fromCharCode(b);
	return btoa(s);
}

async function openRow(key: string, row: Row): Promise<AccountSecrets> {
	return {
		webhook: await open(key, row.webhook_secret),
		webhookPrevious: row.webhook_previous ? await open(key, row.webhook_previous) : null,
		webhookPreviousUntil: row.webhook_previous_until,
		share: await open(key, row.share_secret),
		createdAt: row.created_at,
		webhookRotatedAt: row.webhook_rotated_at,
	};
}

const SELECT = `SELECT webhook_secret, webhook_previous, webhook_previous_until, share_secret, created_at,
  webhook_rotated_at FROM account_secrets WHERE account_id = ?`;

/** The account's secrets, created on first use (concurrent first uses agree: the first insert wins). */
export async function getAccountSecrets(env: Env, accountId: string, now = new Date()): Promise<AccountSecrets> {
	const existing = await first<Row>(env.DB, SELECT, accountId);
	if (existing) return openRow(env.BACKEND_SECRETS_KEY, existing);
	await run(
		env.DB,
		`INSERT INTO account_secrets (account_id, webhook_secret, share_secret, created_at) VALUES (?, ?, ?, ?)
		 ON CONFLICT(account_id) DO NOTHING`,
		accountId,
		await seal(env.BACKEND_SECRETS_KEY, newWebhookSecret()),
		await seal(env.BACKEND_SECRETS_KEY, newShareSecret()),
		now.toISOString(),
	);
	const row = await first<Row>(env.DB, SELECT, accountId);
	if (!row) throw new Error("account secrets missing right after insert");
	return openRow(env.BACKEND_SECRETS_KEY, row);
}

/** The secrets that sign a webhook sent at `now`: the current one, then the previous one while it overlaps. */
export function signingSecrets(secrets: AccountSecrets, now = Date.now()): string[] {
	const previousValid =
		secrets.webhookPrevious !== null &&
		secrets.webhookPreviousUntil !== null &&
		Date.parse(secrets.webhookPreviousUntil) > now;
	return previousValid && secrets.webhookPrevious ? [secrets.webhook, secrets.webhookPrevious] : [secrets.webhook];
}

/** Replaces the webhook secret; the old one keeps signing (beside the new) for 24 h. */
export async function rotateWebhookSecret(env: Env, accountId: string, now = new Date()): Promise<AccountSecrets> {
	const current = await getAccountSecrets(env, accountId, now);
	const until = new Date(now.getTime() + WEBHOOK_ROTATION_OVERLAP_MS).toISOString();
	await run(
		env.DB,
		`UPDATE account_secrets SET webhook_secret = ?, webhook_previous = ?, webhook_previous_until = ?,
		   webhook_rotated_at = ? WHERE account_id = ?`,
		await seal(env.BACKEND_SECRETS_KEY, newWebhookSecret()),
		await seal(env.BACKEND_SECRETS_KEY, current.webhook),
		until,
		now.toISOString(),
		accountId,
	);
	return getAccountSecrets(env, accountId, now);
}

/** Replaces the share secret: every share link signed before stops verifying at once. */
export async function rotateShareSecret(env: Env, accountId: string, now = new Date()): Promise<void> {
	await getAccountSecrets(env, accountId, now);
	await run(
		env.DB,
		"UPDATE account_secrets SET share_secret = ?, share_rotated_at = ? WHERE account_id = ?",
		await seal(env.BACKEND_SECRETS_KEY, newShareSecret()),
		now.toISOString(),
		accountId,
	);
}
