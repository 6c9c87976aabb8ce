import type { JobLogEntry } from "../../src/jobs/logs";
import { queueChanged } from "../../src/jobs/queue";
import { DEFAULT_WEBHOOK_EVENTS, type JobRecord, snapshotOf, type WebhookDeliveryView } from "../../src/jobs/record";
import { isTerminal } from "../../src/jobs/state";
import { toJobView } from "../../src/jobs/view";
import type { Logger } from "../../src/lib/logger";
import type { JobEventType, JobStatus } from "../../src/schemas/jobs";
import type { ObjectSql } from "../sql";
import { EventHub, JobEventLog, type StoredEvent } from "./events";
import { WebhookOutbox } from "./outbox";
import type { JobStoreHooks, StoredJob } from "./store";
import { sendDueDeliveries } from "./webhook-sender";

/** At most one `job.progress` webhook per this interval; status events are never throttled. */
export const PROGRESS_WEBHOOK_INTERVAL_MS = 2_000;

/** Statuses that have a webhook event type (`queued` is only the start, or a resubmission after a loss). */
const WEBHOOK_STATUSES: readonly JobStatus[] = ["running", "succeeded", "failed", "canceled"];

/**
 * Turns saved job changes into events: the SSE log and hub (events.ts) and the webhook outbox (outbox.ts). The JobStore calls `saved` inside each save, so the change, its event and its outbox row are
 * written together.
 */
export class JobNotifier implements JobStoreHooks {
	readonly #log: JobEventLog;
	readonly #hub = new EventHub();
	readonly #outbox: WebhookOutbox;

	constructor(sql: ObjectSql) {
		this.#log = new JobEventLog(sql);
		this.#outbox = new WebhookOutbox(sql);
	}

	/** Store hook: after every save (and the insert), with the previous state (null on insert). */
	saved(prev: StoredJob | null, next: StoredJob): void {
		const type: JobEventType | null =
			prev === null || prev.status !== next.status
				? "status"
				: JSON.stringify(prev.progress) !== JSON.stringify(next.progress)
					? "progress"
					: null;
		// A waiting job's new place or reason is news to a client watching it: a `progress` event (its progress
		// towards starting). Not a webhook: a receiver is not woken for every place a job moves up.
		const queueMoved = type === null && next.status === "queued" && queueChanged(prev?.queue, next.queue);
		if (type === null && !queueMoved) return;
		const view = eventView(next);
		const event = this.#log.append(type ?? "progress", next.updated_at, JSON.stringify(view));
		this.#hub.publish(event, type === "status" && isTerminal(next.status));
		if (type !== null) this.#enqueueWebhook(next, type, view);
	}

	/**
	 * New log lines of the GPU worker: a `log` event carrying the job, with the lines in its `log` field (so a client
	 * that reads every event as the job still can). Never a webhook.
	 */
	logged(job: StoredJob, entries: JobLogEntry[], at: string): void {
		if (entries.length === 0) return;
		const event = this.#log.append("log", at, JSON.stringify({ ...eventView(job), log: entries }));
		this.#hub.publish(event, false);
	}

	/** Store hook: the deliveries shown on the job JSON. */
	deliveries(): WebhookDeliveryView[] {
		return this.#outbox.list();
	}

	/**
	 * An SSE stream for `job`: the current state (or, with `lastEventId`, the stored events after it), then live
	 * events until a terminal status. Null when a resume of a finished job has nothing left to send (an id at or past
	 * its last event): the route answers 204, which tells an EventSource to stop reconnecting.
	 */
	subscribe(job: JobRecord, lastEventId: number | null): ReadableStream<Uint8Array> | null {
		const terminal = isTerminal(job.status);
		let initial: StoredEvent[];
		const latest = this.#log.latestSeq();
		// At or past a finished job's last event alike: nothing more will come (the route's 204).
		if (terminal && lastEventId !== null && lastEventId >= latest) return null;
		const current = (): StoredEvent => ({ seq: latest, type: "status", data: JSON.stringify(eventView(job)) });
		if (lastEventId === null || lastEventId > latest) initial = [current()];
		else {
			const replay = this.#log.after(lastEventId);
			// Pruned past the client's position: the current state stands in for what it missed.
			initial = replay.complete ? replay.events : [current()];
		}
		if (terminal && initial.length === 0) return null;
		return this.#hub.subscribe(initial, terminal);
	}

	/** Open SSE listeners (tests, debugging). */
	listeners(): number {
		return this.#hub.size;
	}

	/** Sends the due webhook deliveries; true when any were due. Never throws. */
	async sendDue(env: Env, job: JobRecord, log: Logger): Promise<boolean> {
		try {
			return await sendDueDeliveries(this.#outbox, env, job.spec, log);
		} catch (err) {
			log.error("webhook_send_failed", { error: err instanceof Error ? err.message : String(err) });
			return false;
		}
	}

	/** The earliest pending webhook attempt (epoch ms), or null. */
	nextDeliveryAt(): number | null {
		return this.#outbox.nextDueAt();
	}

	#enqueueWebhook(job: StoredJob, type: JobEventType, view: unknown): void {
		const webhook = job.spec.webhook;
		if (!webhook || this.#outbox.disabled()) return;
		const wanted: readonly string[] = webhook.events ?? DEFAULT_WEBHOOK_EVENTS;
		let name: string;
		if (type === "status") {
			if (!WEBHOOK_STATUSES.includes(job.status)) return;
			name = job.status;
		} else name = "progress";
		if (!wanted.includes(name)) return;
		const now = Date.now();
		if (name === "progress" && now - this.#outbox.lastProgressAt() < PROGRESS_WEBHOOK_INTERVAL_MS) return;
		const eventType = `job.${name}`;
		const body = JSON.stringify({ type: eventType, timestamp: new Date(now).toISOString(), data: view });
		this.#outbox.enqueue(eventType, body, now);
	}
}

/**
 * The job JSON carried by events and webhooks. The delivery list is left out: it changes with every attempt, and
 * a payload describing its own delivery would differ between retries of one message.
 */
function eventView(job: JobRecord) {
	return toJobView(snapshotOf({ ...job, deliveries: undefined }), job.spec.origin);
}
