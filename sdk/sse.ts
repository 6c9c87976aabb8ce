// A server-sent events parser per the WHATWG HTML spec (§9.2.6), fed arbitrary chunks. EventSource cannot
// send an Authorization header, so clients read the stream with fetch and parse it here.

export interface SseMessage {
	/** The `event` field, `message` when absent. */
	event: string;
	data: string;
	/** The last event id seen on the stream (it persists across messages, as in EventSource). */
	id: string;
}

export class SseParser {
	#buffer = "";
	#event = "";
	#data: string[] = [];
	#lastId = "";
	#retry: number | undefined;
	/** A chunk ended in CR: a LF at the start of the next one belongs to the same line break. */
	#afterCr = false;

	/** Feeds decoded text; returns the messages completed by it. */
	push(text: string): SseMessage[] {
		if (this.#afterCr && text.startsWith("\n")) text = text.slice(1);
		this.#afterCr = false;
		this.#buffer += text;
		const out: SseMessage[] = [];
		for (;;) {
			const m = /\r\n|\r|\n/.exec(this.#buffer);
			if (!m) break;
			// A CR at the very end may be the first half of CRLF split across chunks.
			if (m[0] === "\r" && m.index === this.#buffer.length - 1) this.#afterCr = true;
			const line = this.#buffer.slice(0, m.index);
			this.#buffer = this.#buffer.slice(m.index + m[0].length);
			const message = this.#line(line);
			if (message) out.push(message);
		}
		return out;
	}

	/** The last event id, to send as `Last-Event-ID` when reconnecting. */
	get lastEventId(): string {
		return this.#lastId;
	}

	/** The reconnection delay the server asked for with `retry:`, in ms, if it did. */
	get retryMs(): number | undefined {
		return this.#retry;
	}

	#line(line: string): SseMessage | undefined {
		if (line === "") return this.#dispatch();
		if (line.startsWith(":")) return undefined; // A comment (servers send them as keep-alives).
		const colon = line.indexOf(":");
		const field = colon === -1 ? line : line.slice(0, colon);
		let value = colon === -1 ? "" : line.slice(colon + 1);
		if (value.startsWith(" ")) value = value.slice(1);
		switch (field) {
			case "event":
				this.#event = value;
				break;
			case "data":
				this.#data.push(value);
				break;
			case "id":
				// An id with NUL is ignored, per the spec.
				if (!value.includes("\0")) this.#lastId = value;
				break;
			case "retry":
				if (/^\d+$/.test(value)) this.#retry = Number(value);
				break;
			// Unknown fields are ignored.
		}
		return undefined;
	}

	#dispatch(): SseMessage | undefined {
		const data = this.#data;
		const event = this.#event || "message";
		this.#data = [];
		this.#event = "";
		// Without data lines there is nothing to dispatch (a lone `id:` or `retry:` only updates state).
		if (data.length === 0) return undefined;
		return { event, data: data.join("\n"), id: this.#lastId };
	}
}

/** Yields the messages of an event-stream body; a partial message at the end of the stream is dropped. */
export async function* readSse(body: ReadableStream<Uint8Array>, parser = new SseParser()): AsyncGenerator<SseMessage> {
	const reader = body.pipeThrough(new TextDecoderStream()).getReader();
	try {
		for (;;) {
			const { done, value } = await reader.read();
			if (done) return;
			yield* parser.push(value);
		}
	} finally {
		// Stops the download when the consumer leaves early (a terminal status, an abort).
		await reader.cancel().catch(() => {});
	}
}
