import { afterEach, describe, expect, it, vi } from "vitest";
import { EventHub, KEEP_ALIVE_MS, type StoredEvent } from "../../durable-objects/job/events";

const event = (seq: number, type: StoredEvent["type"] = "status"): StoredEvent => ({
	seq,
	type,
	data: JSON.stringify({ seq }),
});

async function drain(stream: ReadableStream<Uint8Array>): Promise<string> {
	return new Response(stream).text();
}

afterEach(() => {
	vi.useRealTimers();
});

describe("the event hub", () => {
	it("sends the initial events, live events, keep-alive comments, and closes everyone after a terminal status", async () => {
		vi.useFakeTimers();
		const hub = new EventHub();
		const a = hub.subscribe([event(1)], false);
		const b = hub.subscribe([], false);
		expect(hub.size).toBe(2);
		hub.publish(event(2, "progress"), false);
		vi.advanceTimersByTime(KEEP_ALIVE_MS);
		hub.publish(event(3), true);
		expect(hub.size).toBe(0);
		const [textA, textB] = await Promise.all([drain(a), drain(b)]);
		expect(textA).toBe(
			'id: 1\nevent: status\ndata: {"seq":1}\n\n' +
				'id: 2\nevent: progress\ndata: {"seq":2}\n\n' +
				": keep-alive\n\n" +
				'id: 3\nevent: status\ndata: {"seq":3}\n\n',
		);
		expect(textB).toBe(textA.slice(textA.indexOf("id: 2")));
	});

	it("closes at once for a finished job, and forgets a listener that cancels", async () => {
		const hub = new EventHub();
		expect(await drain(hub.subscribe([event(7)], true))).toBe('id: 7\nevent: status\ndata: {"seq":7}\n\n');
		const open = hub.subscribe([], false);
		expect(hub.size).toBe(1);
		await open.cancel();
		expect(hub.size).toBe(0);
	});
});
