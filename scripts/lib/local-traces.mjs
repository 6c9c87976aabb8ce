// Whether `wrangler dev` captures a trace of every invocation for its Local Explorer.
//
// wrangler 4.118 turned that capture on by default (https://github.com/cloudflare/workers-sdk/releases/tag/wrangler@4.118.0,
// "Enable local observability capture by default in dev"; `X_LOCAL_OBSERVABILITY=false` opts out). It streams each
// invocation, every Durable Object call included, to a collector that writes it to a local SQLite store. A status read
// is two or three invocations (the Worker, the job's object, now and then the key's gate), and on a 2-core machine the
// capture added about 1.4 ms to each read one at a time and took a quarter off its loaded rate (BENCHMARKS.md): work
// a deployed Worker never does on the request's path. So the local stack runs without it unless asked (`npm start -- --local-traces`),
// and the benchmarks that stand for `npm start` do the same.

/** The environment entry that turns wrangler's local trace capture on or off. */
export function localTracesEnv(enabled) {
	return { X_LOCAL_OBSERVABILITY: enabled ? "true" : "false" };
}
