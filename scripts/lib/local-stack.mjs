// Where the local stack runs. `npm start` records it (its URL, where the admin token lives, its log) in one
// git-ignored file once it is healthy; the keys script, the CLI and the clients read it, so they find the stack on
// whatever port it was given. REELGATE_URL, REELGATE_PORT and explicit flags still come first.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ROOT } from "./paths.mjs";

export const DEFAULT_URL = "http://127.0.0.1:8787";

/** The record's path: REELGATE_LOCAL_FILE (test stacks keep theirs apart), else `.reelgate/local.json`. */
export function localStackFile(env = process.env) {
	return env.REELGATE_LOCAL_FILE ? path.resolve(env.REELGATE_LOCAL_FILE) : path.join(ROOT, ".reelgate", "local.json");
}

/**
 * What `npm start` writes.
 * @typedef {{ url: string, admin_token_file: string, log_file?: string, gpu_worker_url?: string, pid: number,
 *   started_at: string }} LocalStack
 */

/**
 * Writes the record atomically (a reader never sees half a file).
 * @param {LocalStack} record
 */
export function writeLocalStack(record, file = localStackFile()) {
	mkdirSync(path.dirname(file), { recursive: true });
	const tmp = `${file}.${process.pid}.tmp`;
	writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
	renameSync(tmp, file);
}

/** The record, or null when there is none (or it is unreadable: it is only a hint). */
export function readLocalStack(file = localStackFile()) {
	if (!existsSync(file)) return null;
	try {
		const record = JSON.parse(readFileSync(file, "utf8"));
		return typeof record?.url === "string" ? /** @type {LocalStack} */ (record) : null;
	} catch {
		return null;
	}
}

/** Removes the record if it is still this process's (a newer `npm start` may have replaced it). */
export function removeLocalStack(pid = process.pid, file = localStackFile()) {
	if (readLocalStack(file)?.pid === pid) rmSync(file, { force: true });
}

/**
 * The API origin a tool talks to, and where that choice came from (for error messages): an explicit flag, then
 * REELGATE_URL, REELGATE_PORT (the port `npm start` was given), the record of a running `npm start`, the default.
 * @param {string | undefined} flag
 * @returns {{ url: string, source: string, stack: LocalStack | null }}
 */
export function resolveApiUrl(flag, env = process.env) {
	const trim = (u) => u.replace(/\/+$/, "");
	if (flag) return { url: trim(flag), source: "--url", stack: null };
	if (env.REELGATE_URL) return { url: trim(env.REELGATE_URL), source: "REELGATE_URL", stack: null };
	if (env.REELGATE_PORT) {
		return { url: `http://127.0.0.1:${env.REELGATE_PORT}`, source: "REELGATE_PORT", stack: null };
	}
	const file = localStackFile(env);
	const stack = readLocalStack(file);
	const relative = path.relative(process.cwd(), file);
	if (stack) return { url: trim(stack.url), source: relative.startsWith("..") ? file : relative, stack };
	return { url: DEFAULT_URL, source: "the default", stack: null };
}

/**
 * One sentence for a request that got no answer at all: the URL tried, where it came from, and how to change it.
 * @param {{ url: string, source: string, stack: LocalStack | null }} target
 * @param {unknown} err the fetch error
 */
export function unreachableMessage(target, err) {
	const cause = /** @type {{ cause?: { code?: string }, message?: string }} */ (err);
	const why = cause?.cause?.code ?? cause?.message ?? String(err);
	if (target.stack) {
		return (
			`Cannot reach the Reelgate API at ${target.url} (${why}), where \`npm start\` said it runs (${target.source}). ` +
			"Is it still running? Start it again, or point the tools elsewhere with --url or REELGATE_URL."
		);
	}
	if (target.source === "the default" || target.source === "REELGATE_PORT") {
		const from =
			target.source === "REELGATE_PORT" ? "from REELGATE_PORT" : "the default: no running `npm start` is recorded";
		return (
			`Cannot reach the Reelgate API at ${target.url} (${why}), ${from}. ` +
			"Start the local stack with `npm start` in another terminal, or point the tools elsewhere with --url or REELGATE_URL."
		);
	}
	return (
		`Cannot reach the Reelgate API at ${target.url} (${why}; from ${target.source}). ` +
		"Check that it runs there, or point the tools elsewhere with --url or REELGATE_URL."
	);
}
