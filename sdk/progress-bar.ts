// A progress line on stderr: redrawn in place on a terminal, one line per change worth noting otherwise (logs).

export class ProgressBar {
	#stream: NodeJS.WriteStream;
	#lastLine = "";
	#lastKey = "";
	#lastStep = -1;

	constructor(stream: NodeJS.WriteStream = process.stderr) {
		this.#stream = stream;
	}

	/** Shows `label` at `percent` (0–100), with optional detail (a stage) after it. */
	update(label: string, percent: number, detail = ""): void {
		const pct = Math.max(0, Math.min(100, Math.round(percent)));
		if (this.#stream.isTTY) {
			const columns = this.#stream.columns ?? 80;
			const width = Math.max(10, Math.min(30, columns - 50));
			const filled = Math.round((pct / 100) * width);
			const bar = `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`;
			const line = `${label.padEnd(14)} ${bar} ${String(pct).padStart(3)}% ${detail}`.slice(0, columns - 1);
			if (line !== this.#lastLine) this.#stream.write(`\r\x1b[2K${line}`);
			this.#lastLine = line;
			return;
		}
		// Without a terminal (CI logs, pipes) a line per new label or stage and per 10 %, not a redraw per byte.
		const key = `${label}\0${detail}`;
		const step = Math.floor(pct / 10);
		if (key === this.#lastKey && step === this.#lastStep) return;
		this.#lastKey = key;
		this.#lastStep = step;
		this.#stream.write(`${label} ${pct}%${detail ? ` ${detail}` : ""}\n`);
	}

	/** Ends the in-place line so later output starts on its own line. */
	done(): void {
		if (this.#stream.isTTY && this.#lastLine) this.#stream.write("\n");
		this.#lastLine = "";
		this.#lastKey = "";
		this.#lastStep = -1;
	}
}
