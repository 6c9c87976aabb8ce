/**
 * A job's log as a client reads it (`GET /v1/jobs/{id}/logs`): the service's own steps (the job's history) and the
 * lines the GPU worker wrote about the job, carried back in its status answers. Everything a client sees passes
 * through `cleanText` first: no query string (where signed URLs keep their signatures), no credential.
 */
import { redactUrl } from "../lib/logger";

/** At most this many characters of one line, and this many worker lines per job (the newest). */
export const LOG_LINE_CHARS = 1000;
export const WORKER_LINES_KEPT = 500;

export interface JobLogEntry {
	at: string;
	source: "service" | "worker";
	event: string;
	status?: string;
	message?: string;
	/** A worker line's other fields (its `level`, a `stage`, a `code`), cleaned like the message. */
	fields?: Record<string, string | number | boolean | null>;
}

const URL_IN_TEXT = /\b(?:https?|wss?):\/\/[^\s'"<>]+/g;
/** Our own API keys and webhook secrets, bearer tokens and `key=value` secrets, wherever they appear. */
const SECRETS = [
	/\brg_(?:live|test)_[A-Za-z0-9_-]+/g,
	/\bwhsec_[A-Za-z0-9+/=_-]+/g,
	/\b(Bearer)\s+[A-Za-z0-9._~+/=-]+/gi,
	/\b((?:api[_-]?key|token|secret|password|signature|sig)["']?\s*[:=]\s*["']?)[^\s"',;&]+/gi,
];

/** Text a client may read: URLs without their query string, secrets replaced, capped in length. */
export function cleanText(text: string): string {
	let out = text.replace(URL_IN_TEXT, (url) => redactUrl(url));
	for (const pattern of SECRETS) {
		out = out.replace(pattern, (_m, keep?: string) => (typeof keep === "string" ? `${keep} [redacted]` : "[redacted]"));
	}
	return out.length > LOG_LINE_CHARS ? `${out.slice(0, LOG_LINE_CHARS - 1)}…` : out;
}

/** A step of the job's history as a log entry. */
export function serviceEntry(h: { at: string; status: string; event: string; detail: string | null }): JobLogEntry {
	const entry: JobLogEntry = { at: h.at, source: "service", event: h.event, status: h.status };
	if (h.detail) entry.message = cleanText(h.detail);
	return entry;
}

/**
 * One line of the GPU worker's JSON log (`{"ts": seconds, "event": …, …}`, see gpu-worker/gpu_worker/log.py) as a
 * log entry; null when it is not such a line. `job_id` is left out (the job is the one asked for).
 */
export function workerEntry(line: string): JobLogEntry | null {
	let parsed: unknown;
	try {
		parsed = JSON.parse(line);
	} catch {
		return null;
	}
	if (typeof parsed !== "object" || parsed === null) return null;
	const { ts, event, message, job_id: _job, ...rest } = parsed as Record<string, unknown>;
	if (typeof ts !== "number" || typeof event !== "string" || !Number.isFinite(ts)) return null;
	const entry: JobLogEntry = { at: new Date(ts * 1000).toISOString(), source: "worker", event: cleanText(event) };
	if (typeof message === "string") entry.message = cleanText(message);
	const fields: NonNullable<JobLogEntry["fields"]> = {};
	for (const [k, v] of Object.entries(rest).slice(0, 20)) {
		if (typeof v === "string") fields[k] = cleanText(v);
		else if (typeof v === "number" || typeof v === "boolean" || v === null) fields[k] = v;
	}
	if (Object.keys(fields).length > 0) entry.fields = fields;
	return entry;
}

/** The whole log, oldest first; steps and worker lines of one instant keep their own order. */
export function mergeLog(service: JobLogEntry[], worker: JobLogEntry[]): JobLogEntry[] {
	return [...service, ...worker].sort((a, b) => a.at.localeCompare(b.at));
}
