// A small closed-loop load generator for loopback benchmarks: `concurrency` keep-alive connections, each sending
// its next request as soon as the last answer has been read, for a fixed duration after a warm-up. Closed-loop
// keeps the server saturated without queueing in the client, so requests per second is the server's capacity at
// that concurrency and the latencies are what each request took under it.
import http from "node:http";

/** One request on `agent`; resolves with the status code once the body has been read. */
function once(agent, target, method, headers, body) {
	return new Promise((resolve, reject) => {
		const req = http.request({ agent, host: target.hostname, port: target.port, path: target.path, method, headers });
		req.on("response", (res) => {
			res.on("data", () => {});
			res.on("end", () => resolve(res.statusCode));
			res.on("error", reject);
		});
		req.on("error", reject);
		req.end(body);
	});
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;

/** `{ requests, rps, p50Ms, p99Ms, meanMs }` of sorted latencies over `durationMs`. */
function summary(sorted, durationMs) {
	return {
		requests: sorted.length,
		rps: sorted.length / (durationMs / 1000),
		p50Ms: quantile(sorted, 0.5),
		p99Ms: quantile(sorted, 0.99),
		meanMs: sorted.reduce((sum, ms) => sum + ms, 0) / Math.max(1, sorted.length),
	};
}

/**
 * Runs the load: `request()` gives `{ method?, path, headers?, body?, tag? }` for each request (called per request,
 * so each may differ). Returns `{ requests, rps, p50Ms, p99Ms, meanMs, statuses, byTag }`, `statuses` counting each
 * status code seen in the measured window (the warm-up's requests are sent but not counted) and `byTag` the same
 * summary, statuses included, for the requests of each `tag`: requests that alternate on one connection meet the
 * same moments of a noisy machine, so their difference is fairer than that of two loads run one after the other.
 */
export async function runLoad({ origin, request, concurrency = 32, durationMs = 10_000, warmupMs = 2_000 }) {
	const url = new URL(origin);
	const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
	const latencies = [];
	const tagged = {};
	const statuses = {};
	const measureFrom = performance.now() + warmupMs;
	const stopAt = measureFrom + durationMs;
	let failures = 0;
	async function connection() {
		while (performance.now() < stopAt) {
			const r = request();
			const headers = { ...(r.headers ?? {}) };
			if (r.body !== undefined) headers["content-length"] = String(Buffer.byteLength(r.body));
			const start = performance.now();
			const status = await once(
				agent,
				{ hostname: url.hostname, port: url.port, path: r.path },
				r.method ?? "GET",
				headers,
				r.body,
			).catch(() => 0);
			const end = performance.now();
			if (status === 0) failures += 1;
			if (start >= measureFrom && end <= stopAt) {
				latencies.push(end - start);
				if (r.tag !== undefined) {
					tagged[r.tag] ??= { latencies: [], statuses: {} };
					const t = tagged[r.tag];
					t.latencies.push(end - start);
					t.statuses[status] = (t.statuses[status] ?? 0) + 1;
				}
				statuses[status] = (statuses[status] ?? 0) + 1;
			}
		}
	}
	await Promise.all(Array.from({ length: concurrency }, connection));
	agent.destroy();
	if (failures > latencies.length / 10) throw new Error(`${failures} requests failed at the socket level`);
	latencies.sort((a, b) => a - b);
	const byTag = {};
	for (const [tag, t] of Object.entries(tagged)) {
		byTag[tag] = {
			...summary(
				t.latencies.sort((a, b) => a - b),
				durationMs,
			),
			statuses: t.statuses,
		};
	}
	return { ...summary(latencies, durationMs), statuses, byTag };
}
