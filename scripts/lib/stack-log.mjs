// The local stack's output: every line of every process goes to one log file; the terminal gets the lines a
// developer must see (warnings, errors, crashes), or everything with --verbose; the last lines of each process
// are kept to explain a failure.
import { createWriteStream, mkdirSync } from "node:fs";
import path from "node:path";

const TAIL_LINES = 40;

/**
 * Worth a developer's attention: the Worker's warn/error log lines, the GPU worker's failures, wrangler's errors,
 * a Python traceback. Not the request log, wrangler's banners or the GPU worker's progress.
 * @param {string} line
 * @param {"stdout" | "stderr"} stream
 */
export function isNotable(line, stream) {
	const text = line.trim();
	if (!text) return false;
	if (text.startsWith("{")) {
		try {
			const entry = JSON.parse(text);
			if (entry.level === "warn" || entry.level === "error") return true;
			return typeof entry.event === "string" && /fail|crash|fatal|error|missing/.test(entry.event);
		} catch {
			// Not a log record after all: judged as text below.
		}
	}
	return /\[ERROR\]|✘|Traceback|Error:/.test(text) || (stream === "stderr" && /error/i.test(text));
}

/**
 * @param {{ file: string, verbose: boolean, out?: NodeJS.WritableStream }} options
 */
export function createStackLog({ file, verbose, out = process.stdout }) {
	mkdirSync(path.dirname(file), { recursive: true });
	const sink = createWriteStream(file, { flags: "w" });
	/** @type {Map<string, string[]>} */
	const tails = new Map();
	let up = false;
	let closed = false;
	return {
		file,
		/** Records one line of process `name`; shows it when verbose, or when notable once the stack is up. */
		line(name, text, stream = "stdout") {
			if (!closed) sink.write(`[${name}] ${text}\n`);
			const tail = tails.get(name) ?? [];
			tail.push(text);
			if (tail.length > TAIL_LINES) tail.shift();
			tails.set(name, tail);
			if (verbose || (up && isNotable(text, stream))) out.write(`[${name}] ${text}\n`);
		},
		/** From now on notable lines reach the terminal (before, a failure prints the tail instead). */
		stackIsUp() {
			up = true;
		},
		/** The last lines of process `name`, for a failure message. */
		tail(name) {
			return tails.get(name) ?? [];
		},
		/** Every line written so far reaches the file; later lines only the terminal. */
		close() {
			closed = true;
			return new Promise((resolve) => sink.end(resolve));
		},
	};
}
