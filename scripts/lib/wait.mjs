// Waiting for HTTP services, and finding free ports.
import { createServer } from "node:net";

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `url` until it answers 2xx, the deadline passes, or `abort()` returns a reason (e.g. the process died).
 * Throws an Error naming the URL, the last status or network error, and the reason.
 */
export async function waitForUrl(url, { headers = {}, timeoutMs = 60_000, intervalMs = 300, abort } = {}) {
	const until = Date.now() + timeoutMs;
	let last = "no answer yet";
	while (Date.now() < until) {
		const reason = abort?.();
		if (reason) throw new Error(`${url} will not come up: ${reason}`);
		try {
			const res = await fetch(url, { headers, signal: AbortSignal.timeout(5000) });
			await res.arrayBuffer().catch(() => {});
			if (res.ok) return res;
			last = `HTTP ${res.status}`;
		} catch (err) {
			last = err.cause?.code ?? err.message;
		}
		await sleep(intervalMs);
	}
	throw new Error(`${url} did not become healthy within ${Math.round(timeoutMs / 1000)} s (last: ${last})`);
}

/** Whether something accepts TCP connections on host:port. */
export function portInUse(port, host = "127.0.0.1") {
	return new Promise((resolve) => {
		const srv = createServer();
		srv.once("error", (err) => resolve(err.code === "EADDRINUSE" || err.code === "EACCES"));
		srv.once("listening", () => srv.close(() => resolve(false)));
		srv.listen(port, host);
	});
}

/** A port that is free on 127.0.0.1 right now. */
export function freePort(host = "127.0.0.1") {
	return new Promise((resolve, reject) => {
		const srv = createServer();
		srv.once("error", reject);
		srv.listen(0, host, () => {
			const { port } = srv.address();
			srv.close(() => resolve(port));
		});
	});
}
