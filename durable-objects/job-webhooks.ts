import { getAccountSecrets, signingSecrets } from "../src/db/account-secrets";
import type { JobSpec, WebhookDeliveryView } from "../src/jobs/record";
import { newId } from "../src/lib/ids";
import type { Logger } from "../src/lib/logger";
import { DEFAULT_SHARE_TTL_S, shareExpiry, signShareUrl } from "../src/share/links";
import { type AttemptOutcome, attemptDelivery } from "../src/webhooks/deliver";
import { retryDelayMs } from "../src/webhooks/schedule";
import { checkWebhookUrl, loopbackAllowed, refusalMessage } from "../src/webhooks/url";

/**
 * The job's webhook outbox: one row per event to deliver, written in the same storage transaction as the job
 * change that caused it (so no event is lost between "saved" and "sent"), sent from the job's alarm and retried on
 * the schedule in src/webhooks/schedule.ts. A 410 turns the job's endpoint off: no further deliveries for it.
 */

export const DELIVERY_STATUSES = ["pending", "delivered", "failed", "disabled"] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** The `webhook_deliveries` table (created through the store's schema version, src/jobs/store.ts). */
export const OUTBOX_DDL = [
	`CREATE TABLE IF NOT EXISTS webhook_deliveries (
		n INTEGER PRIMARY KEY AUTOINCREMENT,
		id TEXT NOT NULL UNIQUE,
		type TEXT NOT NULL,
		body TEXT NOT NULL,
		status TEXT NOT NULL CHECK (status IN (${DELIVERY_STATUSES.map((s) => `'${s}'`).join(", ")})),
		attempts INTEGER NOT NULL DEFAULT 0,
		next_attempt_at INTEGER,
		last_status_code INTEGER,
		last_error TEXT,
		created_at TEXT NOT NULL
	)`,
	"CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at)",
];

/** Deliveries sent per alarm step, in parallel (each bounded by the attempt timeout). */
const MAX_PER_STEP = 10;
/** Deliveries shown on the job JSON: the newest ones. */
const MAX_SHOWN = 50;

interface DeliveryRow extends Record<string, SqlStorageValue> {
	id: string;
	type: string;
	body: string;
	status: DeliveryStatus;
	attempts: number;
	next_attempt_at: number | null;
	last_status_code: number | null;
	last_error: string | null;
}

export class WebhookOutbox {
	readonly #sql: SqlStorage;

	constructor(sql: SqlStorage) {
		this.#sql = sql;
	}

	#meta(key: string): string | null {
		return this.#sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value ?? null;
	}

	#setMeta(key: string, value: string): void {
		this.#sql.exec(
			"INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
			key,
			value,
		);
	}

	/** True once a receiver answered 410 for this job. */
	disabled(): boolean {
		return this.#meta("webhook_disabled") === "1";
	}

	/** When the last `job.progress` was queued (epoch ms), for the throttle. */
	lastProgressAt(): number {
		return Number(this.#meta("webhook_last_progress_at") ?? 0);
	}

	/** Queues a message, due at once; returns its `webhook-id`. */
	enqueue(type: string, body: string, nowMs: number): string {
		const id = newId("msg");
		this.#sql.exec(
			`INSERT INTO webhook_deliveries (id, type, body, status, attempts, next_attempt_at, created_at)
			 VALUES (?, ?, ?, 'pending', 0, ?, ?)`,
			id,
			type,
			body,
			nowMs,
			new Date(nowMs).toISOString(),
		);
		if (type === "job.progress") this.#setMeta("webhook_last_progress_at", String(nowMs));
		return id;
	}

	/** Pending deliveries due at `nowMs`, oldest first. */
	due(nowMs: number, limit = MAX_PER_STEP): DeliveryRow[] {
		return this.#sql
			.exec<DeliveryRow>(
				"SELECT * FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY n LIMIT ?",
				nowMs,
				limit,
			)
			.toArray();
	}

	/** The earliest pending attempt (epoch ms), or null when nothing is pending. */
	nextDueAt(): number | null {
		return this.#sql
			.exec<{ t: number | null }>("SELECT MIN(next_attempt_at) AS t FROM webhook_deliveries WHERE status = 'pending'")
			.one().t;
	}

	/** Records one attempt's outcome: delivered, retry later, given up, or (410) the endpoint switched off. */
	record(id: string, outcome: AttemptOutcome, nowMs: number, random: () => number = Math.random): void {
		const row = this.#sql.exec<DeliveryRow>("SELECT * FROM webhook_deliveries WHERE id = ?", id).toArray()[0];
		if (row?.status !== "pending") return;
		const attempts = row.attempts + 1;
		switch (outcome.kind) {
			case "delivered":
				this.#update(id, "delivered", attempts, null, outcome.statusCode, null);
				return;
			case "gone":
				this.#update(id, "disabled", attempts, null, 410, "the receiver answered 410 Gone");
				this.disableAll("the endpoint answered 410 Gone");
				return;
			case "retry": {
				const delay = retryDelayMs(attempts, outcome.retryAfterMs, random);
				const status: DeliveryStatus = delay === null ? "failed" : "pending";
				const next = delay === null ? null : nowMs + delay;
				this.#update(id, status, attempts, next, outcome.statusCode ?? null, outcome.error);
				return;
			}
		}
	}

	/** Replaces a message's body before its first attempt (see `sendDueDeliveries`). */
	setBody(id: string, body: string): void {
		this.#sql.exec("UPDATE webhook_deliveries SET body = ? WHERE id = ? AND attempts = 0", body, id);
	}

	/** Gives up a delivery without an attempt (e.g. its URL is no longer acceptable). */
	fail(id: string, error: string): void {
		this.#sql.exec(
			"UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, last_error = ? WHERE id = ? AND status = 'pending'",
			error,
			id,
		);
	}

	/** Switches the job's endpoint off: pending deliveries become `disabled`, and nothing new is queued. */
	disableAll(reason: string): void {
		this.#setMeta("webhook_disabled", "1");
		this.#sql.exec(
			"UPDATE webhook_deliveries SET status = 'disabled', next_attempt_at = NULL, last_error = COALESCE(last_error, ?) WHERE status = 'pending'",
			reason,
		);
	}

	/** The newest deliveries, oldest first, for the job JSON. */
	list(limit = MAX_SHOWN): WebhookDeliveryView[] {
		const rows = this.#sql
			.exec<DeliveryRow>(`SELECT * FROM (SELECT * FROM webhook_deliveries ORDER BY n DESC LIMIT ?) ORDER BY n`, limit)
			.toArray();
		return rows.map((r) => {
			const view: WebhookDeliveryView = { id: r.id, type: r.type, attempts: r.attempts, status: r.status };
			if (r.last_status_code !== null) view.last_status_code = r.last_status_code;
			if (r.last_error !== null) view.last_error = r.last_error;
			if (r.status === "pending" && r.next_attempt_at !== null) {
				view.next_attempt_at = new Date(r.next_attempt_at).toISOString();
			}
			return view;
		});
	}

	#update(
		id: string,
		status: DeliveryStatus,
		attempts: number,
		next: number | null,
		code: number | null,
		error: string | null,
	): void {
		this.#sql.exec(
			`UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, last_status_code = ?,
			   last_error = ? WHERE id = ?`,
			status,
			attempts,
			next,
			code,
			error,
			id,
		);
	}
}

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
	const target = webhook ? checkWebhookUrl(webhook.url, loopbackAllowed(env)) : null;
	if (!webhook || !target?.ok) {
		const error = target && !target.ok ? refusalMessage(target.reason) : "the job has no webhook";
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
