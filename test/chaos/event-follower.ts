// A chaos client that follows its job through `GET /v1/jobs/{id}/events` instead of polling, the way an
// EventSource does: on a dropped stream (the runtime killed mid-stream) or a refused connection it reconnects with
// `Last-Event-ID`, and it stops at the terminal status. What it checks on the way: event ids only ever increase
// across reconnects (no event twice, none out of order), and the stream ends only after a terminal status.

import { SseParser } from "../../sdk/sse";

const TERMINAL = new Set(["succeeded", "failed", "canceled"]);
/** Keep-alive comments come every 15 s: a stream silent for longer is dead (a half-open connection). */
const SILENCE_MS = 40_000;

export interface FollowResult<View> {
	/** The last job state the stream carried. */
	view?: View;
	/** Event frames received, over all connections. */
	events: number;
	/** Streams resumed with Last-Event-ID (a 200 after the first stream). */
	resumes: number;
	/** Connection attempts that got no stream (refused while the runtime was down, 429, 503). */
	refused: number;
	/** What broke the stream's contract, if anything. */
	problems: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function followEvents<View extends { status: string }>(
	baseUrl: string,
	key: string,
	jobId: string,
	until: number,
): Promise<FollowResult<View>> {
	const result: FollowResult<View> = { events: 0, resumes: 0, refused: 0, problems: [] };
	let lastId: number | null = null;
	while (Date.now() < until) {
		const headers: Record<string, string> = { authorization: `Bearer ${key}` };
		if (lastId !== null) headers["last-event-id"] = String(lastId);
		const abort = new AbortController();
		let silence = setTimeout(() => abort.abort(), SILENCE_MS);
		try {
			const res = await fetch(`${baseUrl}/v1/jobs/${jobId}/events`, { headers, signal: abort.signal });
			if (res.status === 204) {
				// Nothing after Last-Event-ID: only right once the terminal status has been seen, which ends the loop first.
				result.problems.push(`204 after event ${lastId} while the job was ${result.view?.status}`);
				return result;
			}
			if (res.status !== 200 || !res.body) {
				await res.body?.cancel();
				if (res.status !== 429 && res.status < 500) {
					result.problems.push(`HTTP ${res.status} on (re)connect`);
					return result;
				}
				result.refused++;
				await sleep(500 + Math.random() * 500);
				continue;
			}
			if (lastId !== null) result.resumes++;
			const decoder = new TextDecoder();
			// A fresh parser per connection, as EventSource: the SDK's (sdk/sse.ts), fed chunk by chunk so that
			// keep-alive comments, which make no message, still count as signs of life.
			const parser = new SseParser();
			for await (const chunk of res.body) {
				clearTimeout(silence);
				silence = setTimeout(() => abort.abort(), SILENCE_MS);
				for (const message of parser.push(decoder.decode(chunk, { stream: true }))) {
					result.events++;
					const id = Number(message.id);
					if (!Number.isInteger(id) || (lastId !== null && id <= lastId)) {
						result.problems.push(`event id ${message.id} after ${lastId}`);
					}
					lastId = Number.isInteger(id) ? id : lastId;
					result.view = JSON.parse(message.data) as View;
					if (message.event === "status" && TERMINAL.has(result.view.status)) {
						await res.body.cancel().catch(() => undefined);
						return result;
					}
				}
			}
			// The server closed the stream without a terminal status: only a restart may do that; reconnect.
		} catch {
			// Refused, reset mid-stream (the runtime was killed) or silent too long: reconnect like EventSource.
			result.refused++;
			await sleep(300 + Math.random() * 400);
		} finally {
			clearTimeout(silence);
		}
	}
	result.problems.push(`no terminal status by the deadline (last: ${result.view?.status})`);
	return result;
}
