import type { WebhookDeliveryView } from "../../src/jobs/record";
import { newId } from "../../src/lib/ids";
import type { DeliveryStatus } from "../../src/schemas/jobs";
import type { AttemptOutcome } from "../../src/webhooks/deliver";
import { retryDelayMs } from "../../src/webhooks/schedule";
import type { ObjectSql } from "../sql";
import { JOB_META } from "./schema";

/**
 * The job's webhook outbox (the `webhook_deliveries` table, schema.ts): one row per event to deliver, written in
 * the same storage transaction as the job change that caused it (so no event is lost between "saved" and "sent"),
 * sent from the job's alarm (webhook-sender.ts) and retried on the schedule in src/webhooks/schedule.ts. A 410
 * turns the job's endpoint off: no further deliveries for it.
 */

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
	readonly #sql: ObjectSql;

	constructor(sql: ObjectSql) {
		this.#sql = sql;
	}

	/** True once a receiver answered 410 for this job. */
	disabled(): boolean {
		return this.#sql.meta(JOB_META.webhookDisabled) === "1";
	}

	/** When the last `job.progress` was queued (epoch ms), for the throttle. */
	lastProgressAt(): number {
		return Number(this.#sql.meta(JOB_META.webhookLastProgressAt) ?? 0);
	}

	/** Queues a message, due at once; returns its `webhook-id`. */
	enqueue(type: string, body: string, nowMs: number): string {
		const id = newId("msg");
		this.#sql.run(
			`INSERT INTO webhook_deliveries (id, type, body, status, attempts, next_attempt_at, created_at)
			 VALUES (?, ?, ?, 'pending', 0, ?, ?)`,
			id,
			type,
			body,
			nowMs,
			new Date(nowMs).toISOString(),
		);
		if (type === "job.progress") this.#sql.setMeta(JOB_META.webhookLastProgressAt, String(nowMs));
		return id;
	}

	/** Pending deliveries due at `nowMs`, oldest first. */
	due(nowMs: number, limit = MAX_PER_STEP): DeliveryRow[] {
		return this.#sql.all<DeliveryRow>(
			"SELECT * FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY n LIMIT ?",
			nowMs,
			limit,
		);
	}

	/** The earliest pending attempt (epoch ms), or null when nothing is pending. */
	nextDueAt(): number | null {
		return this.#sql.one<{ t: number | null }>(
			"SELECT MIN(next_attempt_at) AS t FROM webhook_deliveries WHERE status = 'pending'",
		).t;
	}

	/** Records one attempt's outcome: delivered, retry later, given up, or (410) the endpoint switched off. */
	record(id: string, outcome: AttemptOutcome, nowMs: number, random: () => number = Math.random): void {
		const row = this.#sql.first<DeliveryRow>("SELECT * FROM webhook_deliveries WHERE id = ?", id);
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
		this.#sql.run("UPDATE webhook_deliveries SET body = ? WHERE id = ? AND attempts = 0", body, id);
	}

	/** Gives up a delivery without an attempt (e.g. its URL is no longer acceptable). */
	fail(id: string, error: string): void {
		this.#sql.run(
			"UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, last_error = ? WHERE id = ? AND status = 'pending'",
			error,
			id,
		);
	}

	/** Switches the job's endpoint off: pending deliveries become `disabled`, and nothing new is queued. */
	disableAll(reason: string): void {
		this.#sql.setMeta(JOB_META.webhookDisabled, "1");
		this.#sql.run(
			"UPDATE webhook_deliveries SET status = 'disabled', next_attempt_at = NULL, last_error = COALESCE(last_error, ?) WHERE status = 'pending'",
			reason,
		);
	}

	/** The newest deliveries, oldest first, for the job JSON. */
	list(limit = MAX_SHOWN): WebhookDeliveryView[] {
		const rows = this.#sql.all<DeliveryRow>(
			"SELECT * FROM (SELECT * FROM webhook_deliveries ORDER BY n DESC LIMIT ?) ORDER BY n",
			limit,
		);
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
		this.#sql.run(
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
