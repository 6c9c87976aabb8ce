/**
 * JSON logs, one line per event. Callers pass only what is safe to log: never keys, tokens or signed URLs
 * (use `redactUrl` for any URL that may carry a signature in its query).
 */
export interface Logger {
	info(event: string, fields?: Record<string, unknown>): void;
	warn(event: string, fields?: Record<string, unknown>): void;
	error(event: string, fields?: Record<string, unknown>): void;
	child(fields: Record<string, unknown>): Logger;
}

export function createLogger(base: Record<string, unknown> = {}): Logger {
	const write = (level: "info" | "warn" | "error", event: string, fields?: Record<string, unknown>) => {
		const line = JSON.stringify({ level, event, ...base, ...fields, time: new Date().toISOString() });
		if (level === "error") console.error(line);
		else if (level === "warn") console.warn(line);
		else console.log(line);
	};
	return {
		info: (event, fields) => write("info", event, fields),
		warn: (event, fields) => write("warn", event, fields),
		error: (event, fields) => write("error", event, fields),
		child: (fields) => createLogger({ ...base, ...fields }),
	};
}

/** Drops the query string (where signatures live) and any userinfo from a URL before logging it. */
export function redactUrl(url: string): string {
	try {
		const u = new URL(url);
		return `${u.protocol}//${u.host}${u.pathname}`;
	} catch {
		return "<invalid url>";
	}
}
