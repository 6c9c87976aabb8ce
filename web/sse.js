// A server-sent events parser (WHATWG HTML §9.2.6) fed arbitrary text chunks. The page reads the event
// stream with fetch because EventSource cannot send the Authorization header.

export class SseParser {
	#buffer = "";
	#event = "";
	#data = [];
	#afterCr = false;
	lastEventId = "";

	/** Feeds decoded text; returns the messages ({ event, data, id }) it completed. */
	push(text) {
		if (this.#afterCr && text.startsWith("\n")) text = text.slice(1);
		this.#afterCr = false;
		this.#buffer += text;
		const out = [];
		for (;;) {
			const m = /\r\n|\r|\n/.exec(this.#buffer);
			if (!m) break;
			// A CR ending the chunk may be half of a CRLF split across chunks.
			if (m[0] === "\r" && m.index === this.#buffer.length - 1) this.#afterCr = true;
			const line = this.#buffer.slice(0, m.index);
			this.#buffer = this.#buffer.slice(m.index + m[0].length);
			const message = this.#line(line);
			if (message) out.push(message);
		}
		return out;
	}

	#line(line) {
		if (line === "") {
			const data = this.#data;
			const event = this.#event || "message";
			this.#data = [];
			this.#event = "";
			return data.length ? { event, data: data.join("\n"), id: this.lastEventId } : undefined;
		}
		if (line.startsWith(":")) return undefined;
		const colon = line.indexOf(":");
		const field = colon === -1 ? line : line.slice(0, colon);
		let value = colon === -1 ? "" : line.slice(colon + 1);
		if (value.startsWith(" ")) value = value.slice(1);
		if (field === "event") this.#event = value;
		else if (field === "data") this.#data.push(value);
		else if (field === "id" && !value.includes("\0")) this.lastEventId = value;
		return undefined;
	}
}
