import { describe, expect, it } from "vitest";
import { readSse, SseParser } from "../../sdk/index.ts";

function feed(chunks: string[]) {
	const parser = new SseParser();
	return { messages: chunks.flatMap((c) => parser.push(c)), parser };
}

describe("SseParser", () => {
	const stream =
		'id: 1\nevent: status\ndata: {"status":"running"}\n\n: keep-alive\n\nid: 2\nevent: progress\ndata: {"percent":50}\n\n';

	it("gives the same messages however the text is split, even mid-line", () => {
		const whole = feed([stream]).messages;
		expect(whole).toEqual([
			{ event: "status", data: '{"status":"running"}', id: "1" },
			{ event: "progress", data: '{"percent":50}', id: "2" },
		]);
		for (let cut = 1; cut < stream.length; cut++) {
			expect(feed([stream.slice(0, cut), stream.slice(cut)]).messages).toEqual(whole);
		}
		expect(feed([...stream]).messages).toEqual(whole);
	});

	it("handles CRLF split between chunks, and bare CR", () => {
		const { messages } = feed(["data: a\r", "\ndata: b\r", "\r", "data: c\r\r"]);
		expect(messages).toEqual([
			{ event: "message", data: "a\nb", id: "" },
			{ event: "message", data: "c", id: "" },
		]);
	});

	it("skips comments and unknown fields, and keeps the last id across messages", () => {
		const { messages, parser } = feed([": hello\nfoo: bar\nid: 7\ndata: x\n\ndata: y\n\n"]);
		expect(messages.map((m) => [m.data, m.id])).toEqual([
			["x", "7"],
			["y", "7"],
		]);
		expect(parser.lastEventId).toBe("7");
	});

	it("reads retry, and ignores a retry that is not a number", () => {
		const { parser } = feed(["retry: 2500\n\n"]);
		expect(parser.retryMs).toBe(2500);
		parser.push("retry: soon\n\n");
		expect(parser.retryMs).toBe(2500);
	});

	it("does not dispatch a message without data, nor one cut off by the end of the stream", () => {
		expect(feed(["id: 3\n\nevent: status\n\ndata: partial"]).messages).toEqual([]);
	});

	it("takes the value after `field:` without one leading space, and a field without colon as empty", () => {
		expect(feed(["data:  two spaces\ndata\n\n"]).messages[0]?.data).toBe(" two spaces\n");
	});

	it("readSse decodes UTF-8 split across byte chunks", async () => {
		const bytes = new TextEncoder().encode("event: status\ndata: é✓\n\n");
		const body = new ReadableStream<Uint8Array>({
			start(c) {
				for (const b of bytes) c.enqueue(Uint8Array.of(b));
				c.close();
			},
		});
		const out = [];
		for await (const m of readSse(body)) out.push(m);
		expect(out).toEqual([{ event: "status", data: "é✓", id: "" }]);
	});
});
