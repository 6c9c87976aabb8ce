#!/usr/bin/env node
// Requests per second and latency of an authenticated `GET /v1/jobs/{id}` (API-key lookup in D1, the per-key rate
// limit, the job read from its Durable Object) against the bare `/__bench/hello` route of the same Worker, in the
// same run. The bench entry (bench/worker/entry.ts: the real Worker plus the baseline) is served by miniflare's API
// directly, then through `wrangler dev` (`unstable_startWorker`) for comparison: wrangler's proxy in front of workerd
// caps every route, which hides what the API itself costs. The rate limits get generous values through the vars
// (bench/lib/bench-stack.mjs) so the load measures cost, not refusals; 429s are counted all the same.
// BENCH_DURATION_S (default 10), BENCH_CONCURRENCY (default 32). Prints a markdown section.
import { startMiniflareStack, startWranglerStack } from "./lib/bench-stack.mjs";
import { createJob, prepareAccount, putBenchPod, startPodEmulator } from "./lib/fixtures.mjs";
import { runLoad } from "./lib/load.mjs";

const DURATION_MS = (Number(process.env.BENCH_DURATION_S) || 10) * 1000;
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY) || 32;
const WARMUP_MS = Math.min(2000, DURATION_MS / 2);

/** Both routes on one stack: hello first, then the job read, each under the same load. */
async function measureStack(label, start, pod, withSteps) {
	const stack = await start();
	try {
		const account = await prepareAccount(stack);
		// The job stays `running` during the measurement (putBenchPod: relay mode).
		await putBenchPod(stack, pod);
		const job = await createJob(stack, account, "bench-pod");
		const auth = { authorization: `Bearer ${account.key}` };
		const load = (path, headers) =>
			runLoad({
				origin: stack.url,
				request: () => ({ path, headers }),
				concurrency: CONCURRENCY,
				durationMs: DURATION_MS,
				warmupMs: WARMUP_MS,
			});
		const hello = await load("/__bench/hello", {});
		const jobRead = await load(`/v1/jobs/${job.id}`, auth);
		// Under wrangler dev (what `npm start` serves) the issue's own baseline too: `/healthz`, a real API route, under
		// the same load, and one request at a time, where the job read's extra latency shows undiluted. One at a time,
		// the two routes alternate on one connection, so a slow moment of the shared machine falls on both alike.
		let turn = 0;
		const alternating = () =>
			turn++ % 2 === 0
				? { path: "/healthz", tag: "healthz" }
				: { path: `/v1/jobs/${job.id}`, headers: auth, tag: "job" };
		const paired = withSteps
			? null
			: await runLoad({
					origin: stack.url,
					request: alternating,
					concurrency: 1,
					durationMs: 2 * DURATION_MS,
					warmupMs: WARMUP_MS,
				});
		const healthz = paired
			? { loaded: await load("/healthz", {}), serial: paired.byTag.healthz, jobSerial: paired.byTag.job }
			: null;
		// Where the job read's time goes: each of its two storage steps alone (it runs them side by side), and the D1 key lookup the gate
		// replaced, for comparison (miniflare only: the breakdown is about the API's own cost, which wrangler's
		// proxy would blur).
		const steps = withSteps
			? {
					gate: await load("/__bench/step/gate", auth),
					job: await load(`/__bench/step/job/${job.id}`, {}),
					key: await load("/__bench/step/key", auth),
				}
			: null;
		for (const [name, r, ok] of [
			["hello", hello, 200],
			["GET /v1/jobs/{id}", jobRead, 200],
		]) {
			const other = Object.entries(r.statuses).filter(([s]) => Number(s) !== ok && Number(s) !== 429);
			if (other.length) throw new Error(`${label} ${name}: unexpected statuses ${JSON.stringify(r.statuses)}`);
		}
		for (const [name, r] of Object.entries(steps ?? {})) {
			if (Object.keys(r.statuses).some((s) => Number(s) !== 200)) {
				throw new Error(`${label} step ${name}: unexpected statuses ${JSON.stringify(r.statuses)}`);
			}
		}
		return { label, hello, jobRead, steps, healthz };
	} finally {
		await stack.dispose();
	}
}

async function main() {
	const pod = await startPodEmulator({ token: "bench-pod-token" });
	const rows = [];
	try {
		const inMemory = { inMemory: true };
		rows.push(await measureStack("miniflare API (workerd direct)", () => startMiniflareStack(inMemory), pod, true));
		rows.push(
			await measureStack("wrangler dev (unstable_startWorker)", () => startWranglerStack(inMemory), pod, false),
		);
		// wrangler's own default, which `npm start` turns off (scripts/lib/local-traces.mjs): every invocation traced.
		rows.push(
			await measureStack(
				"wrangler dev, local traces on (wrangler's default)",
				() => startWranglerStack({ ...inMemory, localTraces: true }),
				pod,
				false,
			),
		);
	} finally {
		await pod.close();
	}
	const share429 = (r) => `${(((r.statuses[429] ?? 0) / Math.max(1, r.requests)) * 100).toFixed(1)} %`;
	const line = (label, route, r) =>
		`| ${label} | ${route} | ${r.rps.toFixed(0)} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${share429(r)} |`;
	const [direct, wrangler, traced] = rows;
	const serialGap = (r) => r.healthz.jobSerial.meanMs - r.healthz.serial.meanMs;
	const serialGapP50 = (r) => r.healthz.jobSerial.p50Ms - r.healthz.serial.p50Ms;
	console.log(
		[
			"## Requests: authenticated job read vs a bare route",
			"",
			"| Served by | Route | Requests/s | p50 (ms) | p99 (ms) | 429 |",
			"|---|---|---:|---:|---:|---:|",
			...rows.flatMap((r) => [
				line(r.label, "`/__bench/hello` (baseline)", r.hello),
				line(r.label, "`GET /v1/jobs/{id}`", r.jobRead),
				...(r.healthz
					? [
							line(r.label, "`/healthz` (the API's own bare route)", r.healthz.loaded),
							line(r.label, "`/healthz`, 1 connection (alternating with the next row)", r.healthz.serial),
							line(r.label, "`GET /v1/jobs/{id}`, 1 connection (alternating with the row above)", r.healthz.jobSerial),
						]
					: []),
				...(r.steps
					? [
							line(r.label, "step alone: the key's gate object (cached key row + charge)", r.steps.gate),
							line(r.label, "step alone: job Durable Object read", r.steps.job),
							line(r.label, "for comparison: the API-key lookup in D1 (before the gate kept the row)", r.steps.key),
						]
					: []),
			]),
			"",
			`Ratios (job read / hello, same server): miniflare ${(direct.jobRead.rps / direct.hello.rps).toFixed(2)}× requests/s, ` +
				`${(direct.jobRead.p50Ms / direct.hello.p50Ms).toFixed(1)}× p50; wrangler dev ${(wrangler.jobRead.rps / wrangler.hello.rps).toFixed(2)}× requests/s. ` +
				`wrangler dev / miniflare on the job read: ${(wrangler.jobRead.rps / direct.jobRead.rps).toFixed(2)}×. ` +
				`Against \`/healthz\` under wrangler dev: ${(wrangler.jobRead.rps / wrangler.healthz.loaded.rps).toFixed(2)}× requests/s; ` +
				`one request at a time, the job read takes ${wrangler.healthz.jobSerial.meanMs.toFixed(2)} ms on average against ` +
				`${wrangler.healthz.serial.meanMs.toFixed(2)} ms (+${serialGap(wrangler).toFixed(2)} ms; at the median ` +
				`+${serialGapP50(wrangler).toFixed(2)} ms). ` +
				"With wrangler's local trace capture on (its default; `npm start` turns it off, `--local-traces` turns it on): " +
				`${(traced.jobRead.rps / traced.healthz.loaded.rps).toFixed(2)}× \`/healthz\`, ` +
				`${traced.healthz.jobSerial.meanMs.toFixed(2)} ms against ${traced.healthz.serial.meanMs.toFixed(2)} ms one at a time ` +
				`(+${serialGap(traced).toFixed(2)} ms; at the median +${serialGapP50(traced).toFixed(2)} ms).`,
			`Measured with a closed-loop Node load generator on loopback (bench/lib/load.mjs): ${CONCURRENCY} keep-alive connections, ` +
				`${WARMUP_MS / 1000} s warm-up, then ${DURATION_MS / 1000} s counted (one connection: ${(2 * DURATION_MS) / 1000} s, ` +
				"`/healthz` and the job read taking turns, so each has half the requests and both meet the same slow moments " +
				"of the shared machine); the job read carries a real API key (admitted by " +
				"its gate object, which keeps the key's row and charges a generous per-key rate limit set through the vars, or, for " +
				"most reads of this busy key, on the tokens the gate lent the isolate: docs/limits.md) and reads a running job's " +
				"Durable Object. The load " +
				"generator shares the machine's cores with workerd, so both routes pay its cost alike. The local D1 and Durable Object " +
				"state lives on tmpfs: on disk, each write's sync on this shared machine, not the API's work, set the rate. Under " +
				"wrangler dev the demo page's asset router also sits in front of `/__bench/hello` (it is not in run_worker_first); " +
				"the miniflare stack leaves the assets out, so both routes go straight to the Worker. All requests use one key, so " +
				"they share one gate object, as one busy client would. The `step alone` rows (bench entry routes under " +
				"miniflare) run one of the job read's two storage steps per request and nothing else: the job read runs them " +
				"side by side when it calls the gate at all (the job's id carries its account, and the key's account is known " +
				"from its previous request), so where each is a network round trip it waits for the slower of the two, not " +
				"their sum; here both are in-process calls on shared cores, and the rates measure the CPU they cost. The D1 key lookup row " +
				"is what each request also paid before the gate kept the key's row.",
		].join("\n"),
	);
}

main().catch((err) => {
	console.error(err);
	process.exit(1);
});
