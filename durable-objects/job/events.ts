/**
 * The job's event stream (`GET /v1/jobs/{id}/events`): a log of `status` and `progress` events in the job
 * object's SQLite (the `events` table, schema.ts), numbered by a per-job sequence (the SSE `id:`), and an in-memory
 * hub of open listeners that the save points publish to. Listeners are fed by push, never by polling; the log
 * serves `Last-Event-ID` resumes.
 */
import type { JobEventType } from "../../src/schemas/jobs";
import type { ObjectSql } from "../sql";

/** Events kept for resumes; older ones are pruned (a client that far behind gets the current state instead). */
export const MAX_STORED_EVENTS = 200;
/** SSE comment interval: keeps proxies and idle timeouts from closing a quiet stream. */
export const KEEP_ALIVE_MS = 15_000;

export interface StoredEvent {
	seq: number;
	type: JobEventType;
	/** The job JSON, serialized. */
	data: string;
}

const encoder = new TextEncoder();

/** One SSE frame. `data` is single-line JSON, so no line splitting is needed. */
export function sseFrame(event: StoredEvent): Uint8Array {
	return encoder.encode(`id: ${event.seq}\nevent: ${event.type}\ndata: ${event.data}\n\n`);
}

const KEEP_ALIVE_FRAME = encoder.encode(": keep-alive\n\n");

/** The append-only, pruned event log. */
export class JobEventLog {
	readonly #sql: ObjectSql;

	constructor(sql: ObjectSql) {
		this.#sql = sql;
	}

	/** Appends an event and returns it with its sequence number; keeps the newest MAX_STORED_EVENTS. */
	append(type: JobEventType, at: string, data: string): StoredEvent {
		const { seq } = this.#sql.one<{ seq: number }>(
			"INSERT INTO events (type, at, data) VALUES (?, ?, ?) RETURNING seq",
			type,
			at,
			data,
		);
		this.#sql.run("DELETE FROM events WHERE seq <= ?", seq - MAX_STORED_EVENTS);
		return { seq, type, data };
	}

	/** Stored events after `seq`, oldest first, and whether the log still reaches back to `seq + 1`. */
	after(seq: number): { events: StoredEvent[]; complete: boolean } {
		const events = this.#sql.all<{ seq: number; type: JobEventType; data: string }>(
			"SELECT seq, type, data FROM events WHERE seq > ? ORDER BY seq",
			seq,
		);
		const oldest = this.#sql.one<{ m: number | null }>("SELECT MIN(seq) AS m FROM events").m;
		return { events, complete: oldest === null || oldest <= seq + 1 };
	}

	/** The newest sequence number (0 before any event). */
	latestSeq(): number {
		// sqlite_sequence survives pruning, so the sequence never goes back even when the table is empty.
		return this.#sql.first<{ seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'events'")?.seq ?? 0;
	}
}

interface Listener {
	controller: ReadableStreamDefaultController<Uint8Array>;
}

/**
 * Open SSE listeners of one job. Publishing enqueues a frame on each stream (no await: a slow reader must not hold
 * the job's alarm step); a stream the client dropped is removed on cancel or on the first failed enqueue. One
 * keep-alive timer serves all listeners and stops when the last one leaves.
 */
export class EventHub {
	readonly #listeners = new Set<Listener>();
	#timer: ReturnType<typeof setInterval> | null = null;

	get size(): number {
		return this.#listeners.size;
	}

	/** A stream that starts with `initial`, then follows `publish`; closed at once after `initial` if `closed`. */
	subscribe(initial: StoredEvent[], closed: boolean): ReadableStream<Uint8Array> {
		let listener: Listener | null = null;
		return new ReadableStream<Uint8Array>({
			start: (controller) => {
				for (const event of initial) controller.enqueue(sseFrame(event));
				if (closed) {
					controller.close();
					return;
				}
				listener = { controller };
				this.#listeners.add(listener);
				this.#startKeepAlive();
			},
			cancel: () => {
				if (listener) this.#remove(listener);
			},
		});
	}

	/** Sends `event` to every listener; after a terminal status, closes them all (the stream's contract). */
	publish(event: StoredEvent, terminal: boolean): void {
		for (const listener of this.#listeners) {
			this.#send(listener, sseFrame(event));
			if (terminal) {
				try {
					listener.controller.close();
				} catch {
					// Already closed or errored: nothing left to do.
				}
				this.#remove(listener);
			}
		}
	}

	#send(listener: Listener, frame: Uint8Array): void {
		try {
			listener.controller.enqueue(frame);
		} catch {
			this.#remove(listener);
		}
	}

	#remove(listener: Listener): void {
		this.#listeners.delete(listener);
		if (this.#listeners.size === 0 && this.#timer !== null) {
			clearInterval(this.#timer);
			this.#timer = null;
		}
	}

	#startKeepAlive(): void {
		if (this.#timer !== null) return;
		this.#timer = setInterval(() => {
			for (const listener of this.#listeners) this.#send(listener, KEEP_ALIVE_FRAME);
		}, KEEP_ALIVE_MS);
	}
}
