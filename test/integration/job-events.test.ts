import { beforeAll, describe, expect, it } from "vitest";
import { relayTransfers } from "../emulators/pod/harness";
import { call, newAccount } from "../helpers/api";
import { listeners, stepUntil } from "../helpers/job-object";
import { startJob } from "../helpers/notify";

let auth: Record<string, string>;
beforeAll(async () => {
	auth = await newAccount("sse");
});

interface SseEvent {
	id: string;
	event: string;
	data: { status: string; progress: { percent: number; stage?: string }; log?: { event: string }[] };
}

/** Reads a whole SSE response (until the server closes it) and parses its frames; comments are skipped. */
async function readAll(res: Response, timeoutMs = 15_000): Promise<SseEvent[]> {
	const reader = res.body?.getReader();
	if (!reader) throw new Error("no body");
	const decoder = new TextDecoder();
	let text = "";
	const deadline = setTimeout(() => reader.cancel().catch(() => undefined), timeoutMs);
	for (;;) {
		const { value, done } = await reader.read();
		if (done) break;
		text += decoder.decode(value, { stream: true });
	}
	clearTimeout(deadline);
	return parse(text);
}

function parse(text: string): SseEvent[] {
	return text
		.split("\n\n")
		.filter((frame) => frame.trim() && !frame.startsWith(":"))
		.map((frame) => {
			const fields = Object.fromEntries(
				frame.split("\n").map((line) => [line.slice(0, line.indexOf(":")), line.slice(line.indexOf(":") + 2)]),
			);
			return { id: fields.id ?? "", event: fields.event ?? "", data: JSON.parse(fields.data ?? "null") };
		});
}

/** Reads frames until `count` events have arrived (the stream stays open). */
async function readEvents(reader: ReadableStreamDefaultReader<Uint8Array>, count: number): Promise<SseEvent[]> {
	const decoder = new TextDecoder();
	let text = "";
	while (parse(text).length < count) {
		const { value, done } = await reader.read();
		if (done) break;
		text += decoder.decode(value, { stream: true });
	}
	return parse(text);
}

const open = (id: string, headers: Record<string, string> = {}) =>
	call(`/v1/jobs/${id}/events`, { headers: { ...auth, ...headers } });

describe("GET /v1/jobs/{id}/events", () => {
	it("streams the whole sequence to two listeners at once, then closes after the terminal status", async () => {
		const id = await startJob(auth, "pod-sse");
		// Past its submission first: the creation alarm is due at once and runs by itself too, and the hand-off to the
		// backend is an event, which would otherwise race the streams' opening.
		await stepUntil(id, (j) => j.remote_id !== null);
		const [a, b] = await Promise.all([open(id), open(id)]);
		expect(a.status).toBe(200);
		expect(a.headers.get("content-type")).toBe("text/event-stream");
		expect(a.headers.get("cache-control")).toBe("no-store");
		expect(a.headers.get("x-accel-buffering")).toBe("no");
		const streams = [readAll(a), readAll(b)];

		const running = await stepUntil(id, (j) => j.status === "running");
		await relayTransfers(running.remote_id ?? "");
		await stepUntil(id, (j) => j.status === "succeeded");
		const [seenA, seenB] = await Promise.all(streams);

		const summary = (events: SseEvent[]) =>
			events.map((e) => [e.event, e.data.status, e.data.progress.stage ?? null, e.data.progress.percent]);
		expect(summary(seenA ?? [])).toEqual([
			// The current state: the backend holds the job (`queue.reason: backend_queued`).
			["status", "queued", null, 0],
			// The worker's first answer with its run started carries its log lines: a `log` event, once.
			["log", "queued", null, 0],
			["status", "running", "downloading", 5],
			["progress", "running", "sampling", 60],
			["status", "succeeded", "done", 100],
		]);
		expect(seenB).toEqual(seenA);
		const logged = (seenA ?? []).find((e) => e.event === "log");
		expect(logged?.data.log?.map((l) => l.event)).toEqual(["job_started", "input_fetched"]);
		const ids = (seenA ?? []).map((e) => Number(e.id));
		expect(ids).toEqual([...ids].sort((x, y) => x - y));
		expect(new Set(ids).size).toBe(ids.length);
		expect(await listeners(id)).toBe(0);
	});

	it("resumes after Last-Event-ID with only the later events; 204 once nothing is left", async () => {
		const id = await startJob(auth, "pod-sse");
		const running = await stepUntil(id, (j) => j.status === "running");
		await relayTransfers(running.remote_id ?? "");
		await stepUntil(id, (j) => j.status === "succeeded");

		const whole = await readAll(await open(id));
		// A finished job's stream: its current state, then closed.
		expect(whole.map((e) => [e.event, e.data.status])).toEqual([["status", "succeeded"]]);
		const lastId = whole[0]?.id ?? "";

		// From the start: the full stored history; from the `running` event: only what came after it.
		const history = await readAll(await open(id, { "last-event-id": "0" }));
		expect(history.map((e) => e.data.status)).toEqual([
			"queued",
			"queued",
			"queued",
			"running",
			"running",
			"succeeded",
		]);
		const runningId = history[3]?.id ?? "";
		const resumed = await readAll(await open(id, { "last-event-id": runningId }));
		expect(resumed.map((e) => [e.event, e.data.status])).toEqual([
			["progress", "running"],
			["status", "succeeded"],
		]);
		expect(resumed.every((e) => Number(e.id) > Number(runningId))).toBe(true);
		expect((await open(id, { "last-event-id": lastId })).status).toBe(204);
	});

	it("drops a listener that disconnects (detected at the next write: an event or the keep-alive)", async () => {
		const id = await startJob(auth, "pod-sse");
		const res = await open(id);
		const reader = res.body?.getReader();
		if (!reader) throw new Error("no body");
		const [first] = await readEvents(reader, 1);
		expect(first?.data.status).toBe("queued");
		expect(await listeners(id)).toBe(1);
		await reader.cancel();
		// The next event is the write through which the object learns the client is gone.
		await stepUntil(id, (j) => j.status === "running");
		let left = 1;
		for (let i = 0; i < 50 && left > 0; i++) {
			await new Promise((r) => setTimeout(r, 20));
			left = await listeners(id);
		}
		expect(left).toBe(0);
	});

	it("answers 404 for another account's job and 401 without a key", async () => {
		const id = await startJob(auth, "pod-sse");
		const other = await newAccount("sse-other");
		const res = await call(`/v1/jobs/${id}/events`, { headers: other });
		expect(res.status).toBe(404);
		expect(res.headers.get("content-type")).toBe("application/problem+json");
		expect((await call(`/v1/jobs/${id}/events`)).status).toBe(401);
	});
});
