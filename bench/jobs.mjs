#!/usr/bin/env node
// Two figures about jobs, on the bench entry (bench/worker/entry.ts) served by miniflare's API:
// 1. Completion → `succeeded`, measured for real: jobs on the RunPod emulator (test/emulators/runpod/server.ts),
//    one backend with RunPod's webhook to the Worker's internal callback and one polling only. The benchmark plays
//    the GPU worker: it moves each emulated job itself (`#emu:manual` + the control API), so it knows the instant
//    the job completes at the backend, while a client polls `GET /v1/jobs/{id}` every 50 ms for the first
//    `succeeded`. The backend API calls per job come from a request log in front of the emulator
//    (bench/lib/recording-proxy.mjs) and are printed beside the simulation of the same policy (bench/backends.mjs).
// 2. Jobs created per second: `POST /v1/jobs` (D1, a Durable Object per job) at a fixed client concurrency, as a
//    ratio against `GET /v1/jobs/{id}` and the bare `/__bench/hello` route measured in the same run.
// BENCH_JOB_SECONDS (how long each job runs at the backend, default 10), BENCH_LATENCY_JOBS (jobs per backend,
// default 5), BENCH_DURATION_S (each load phase, default 10), BENCH_CONCURRENCY (default 32).
import { startMiniflareStack } from "./lib/bench-stack.mjs";
import { createJob, prepareAccount, putBenchPod, startPodEmulator, startRunpodEmulator } from "./lib/fixtures.mjs";
import { runLoad } from "./lib/load.mjs";
import { mean, pollDelayMs, quantile, seededRandom, simulate } from "./lib/poll-simulation.mjs";
import { startRecordingProxy } from "./lib/recording-proxy.mjs";

const JOB_MS = (Number(process.env.BENCH_JOB_SECONDS) || 10) * 1000;
const LATENCY_JOBS = Number(process.env.BENCH_LATENCY_JOBS) || 5;
const DURATION_MS = (Number(process.env.BENCH_DURATION_S) || 10) * 1000;
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY) || 32;
const WARMUP_MS = Math.min(2000, DURATION_MS / 2);
const CLIENT_POLL_MS = 50;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The emulator's control API (no auth). */
async function control(emulatorOrigin, path, init) {
	const res = await fetch(`${emulatorOrigin}/_control${path}`, init);
	if (!res.ok) throw new Error(`control ${path}: ${res.status}`);
	return res.json();
}

/** Waits for the Worker's `/run` for `prompt` in the request log; returns the log entry (remote id, time). */
async function submitted(proxy, prompt) {
	for (const deadline = performance.now() + 60_000; performance.now() < deadline; await sleep(10)) {
		const entry = proxy.log.find((e) => e.prompt === prompt && e.remoteId);
		if (entry) return entry;
	}
	throw new Error(`no /run for ${prompt}`);
}

/** What the GPU worker does with the signed URLs: GET each input, PUT the video; then reports the statuses. */
async function relayTransfers(emulatorOrigin, remoteId) {
	const job = await control(emulatorOrigin, `/jobs/${remoteId}`);
	const downloads = {};
	for (const [name, ref] of Object.entries(job.input.inputs)) {
		const res = await fetch(ref.url);
		await res.arrayBuffer();
		downloads[name] = { status: res.status };
	}
	const video = await (await fetch(`${emulatorOrigin}/_control/jobs/${remoteId}/video`)).arrayBuffer();
	const put = await fetch(job.input.output.put.url, {
		method: "PUT",
		headers: job.input.output.put.headers,
		body: video,
	});
	await put.arrayBuffer();
	await control(emulatorOrigin, `/jobs/${remoteId}/relayed`, {
		method: "POST",
		body: JSON.stringify({ downloads, upload: { status: put.status } }),
	});
}

/** RunPod's webhook delivery for `jobId`: takes what the emulator queued and POSTs each to the Worker at once. */
async function deliverWebhooks(emulatorOrigin, jobId) {
	const { deliveries } = await control(
		emulatorOrigin,
		`/webhooks/take?for=${encodeURIComponent(`/runpod/${jobId}?`)}`,
		{
			method: "POST",
		},
	);
	for (const d of deliveries) {
		const res = await fetch(d.url, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify(d.body),
		});
		await res.arrayBuffer();
		if (!res.ok) throw new Error(`webhook ${d.url}: ${res.status}`);
	}
	return deliveries.length;
}

/**
 * One job from creation to the client's first `succeeded`: the backend picks it up at once, it "runs" for about
 * JOB_MS after `/run`, then completes. Returns the latency, the backend calls for it and what the run looked like.
 */
async function timeOneJob(stack, account, emulatorOrigin, proxy, backend, label) {
	const prompt = `bench ${label} #emu:manual`;
	const job = await createJob(stack, account, backend, prompt);
	const run = await submitted(proxy, prompt);
	await control(emulatorOrigin, `/jobs/${run.remoteId}/advance`, { method: "POST" }); // picked up: downloading
	await relayTransfers(emulatorOrigin, run.remoteId);
	await control(emulatorOrigin, `/jobs/${run.remoteId}/advance`, { method: "POST" }); // inputs in: sampling
	// The job runs JOB_MS plus a random part of one poll interval, so the completions fall at every phase of the
	// JobDO's polling rather than at one fixed point of it.
	const completeAt = run.at + JOB_MS + Math.random() * pollDelayMs(JOB_MS);
	// The client polls from half a second before the completion: earlier polls could not see it, and would only load
	// the Worker that the other jobs' clients are timing.
	let seenAt = 0;
	const polling = (async () => {
		await sleep(Math.max(0, completeAt - 500 - performance.now()));
		while (!seenAt) {
			const res = await stack.call("GET", `/v1/jobs/${job.id}`, { token: account.key });
			if (res.body.status === "succeeded") seenAt = performance.now();
			else if (res.body.status === "failed" || res.body.status === "canceled") {
				throw new Error(`job ${job.id} ${res.body.status}: ${JSON.stringify(res.body.error)}`);
			} else await sleep(CLIENT_POLL_MS);
		}
	})();
	await sleep(Math.max(0, completeAt - performance.now()));
	const done = await control(emulatorOrigin, `/jobs/${run.remoteId}/advance`, { method: "POST" });
	const completedAt = performance.now();
	if (done.status !== "COMPLETED") throw new Error(`emulated job ${run.remoteId}: ${done.status}`);
	const webhooks = backend.endsWith("webhook") ? await deliverWebhooks(emulatorOrigin, job.id) : 0;
	if (backend.endsWith("webhook") && webhooks === 0)
		throw new Error(`job ${job.id}: the Worker sent RunPod no webhook`);
	await polling;
	const calls = proxy.log.filter((e) => e.remoteId === run.remoteId || e.path?.includes(`/${run.remoteId}`)).length;
	return { latencyMs: seenAt - completedAt, calls, runMs: completedAt - run.at, webhooks };
}

/**
 * Completion → succeeded for both backends, LATENCY_JOBS each, the two backends' jobs alternating and their starts
 * spread evenly over a job's length, so no two completions (and their clients' polling) fall close together.
 */
async function measureCompletion(stack, account) {
	const emulator = await startRunpodEmulator({ apiKey: "bench-rp-key", endpointId: "ep-bench" });
	const origin = emulator.url.replace(/\/v2$/, "");
	const proxy = await startRecordingProxy(origin);
	try {
		const config = { endpoint_id: emulator.endpointId, api_key: emulator.apiKey, base_url: `${proxy.url}/v2` };
		await stack.putBackend("bench-runpod-webhook", { kind: "runpod", models: ["preview"], config });
		await stack.putBackend("bench-runpod-polling", {
			kind: "runpod",
			models: ["preview"],
			config: { ...config, webhook: false },
		});
		const policies = [
			{ backend: "bench-runpod-webhook", policy: "predicted+webhook", name: "RunPod webhook + polling" },
			{ backend: "bench-runpod-polling", policy: "predicted", name: "polling only" },
		];
		const spacingMs = (JOB_MS + 2000) / (policies.length * LATENCY_JOBS);
		const results = await Promise.all(
			policies.map(async (p, which) => ({
				...p,
				jobs: await Promise.all(
					Array.from({ length: LATENCY_JOBS }, async (_, i) => {
						await sleep((i * policies.length + which) * spacingMs);
						return timeOneJob(stack, account, origin, proxy, p.backend, `${p.backend} ${i}`);
					}),
				),
			})),
		);
		const health = proxy.log.filter((e) => e.path?.endsWith("/health")).length;
		return { results, health };
	} finally {
		await proxy.close();
		await emulator.close();
	}
}

/**
 * bench/backends.mjs's model for a job of the same length under the same policy, with its own assumptions (a
 * 0–5 s queue delay, an 80 ms /status round trip, webhooks delivered in 300 ms and 5 % of them lost).
 */
function simulated(policy, runMs) {
	const random = seededRandom(42);
	const runs = Array.from({ length: 500 }, () => simulate(policy, runMs, random() * 5000, { random }));
	return { calls: mean(runs.map((r) => r.calls)), latencyMs: mean(runs.map((r) => r.latencyMs)) };
}

async function measureCreation(stack, account) {
	const pod = await startPodEmulator({ token: "bench-pod-token" });
	try {
		// The created jobs wait in relay mode (putBenchPod): each costs what a new job costs (its Durable Object, the
		// D1 rows, admission, the `/run`) and little after.
		await putBenchPod(stack, pod);
		const job = await createJob(stack, account, "bench-pod", "bench read");
		const auth = { authorization: `Bearer ${account.key}` };
		const load = (request) =>
			runLoad({ origin: stack.url, request, concurrency: CONCURRENCY, durationMs: DURATION_MS, warmupMs: WARMUP_MS });
		const hello = await load(() => ({ path: "/__bench/hello" }));
		const read = await load(() => ({ path: `/v1/jobs/${job.id}`, headers: auth }));
		const body = JSON.stringify({
			model: "preview",
			input: { image: account.imageId, prompt: "bench create" },
			backend: "bench-pod",
		});
		const create = await load(() => ({
			method: "POST",
			path: "/v1/jobs",
			headers: { ...auth, "content-type": "application/json" },
			body,
		}));
		for (const [name, r, ok] of [
			["hello", hello, 200],
			["read", read, 200],
			["create", create, 202],
		]) {
			const other = Object.keys(r.statuses).filter((s) => Number(s) !== ok && Number(s) !== 429);
			if (other.length) throw new Error(`${name}: unexpected statuses ${JSON.stringify(r.statuses)}`);
		}
		return { hello, read, create };
	} finally {
		await pod.close();
	}
}

async function main() {
	// Local D1 and Durable Object state on tmpfs: see bench/lib/bench-stack.mjs.
	const stack = await startMiniflareStack({ inMemory: true });
	let completion;
	let creation;
	try {
		const account = await prepareAccount(stack);
		completion = await measureCompletion(stack, account);
		creation = await measureCreation(stack, account);
	} finally {
		await stack.dispose();
	}

	const s = (ms) => (ms / 1000).toFixed(2);
	const lines = [
		"## Jobs: creation rate and completion → succeeded",
		"",
		"| Backend | jobs | job length at the backend (s) | completion → client sees `succeeded`: mean (s) | p50 (s) | max (s) | backend API calls / job | simulated (bench/backends.mjs): calls / job | simulated: mean latency (s) |",
		"|---|---:|---:|---:|---:|---:|---:|---:|---:|",
	];
	for (const r of completion.results) {
		const lat = r.jobs.map((j) => j.latencyMs);
		const runMs = mean(r.jobs.map((j) => j.runMs));
		const sim = simulated(r.policy, runMs);
		lines.push(
			`| ${r.name} | ${r.jobs.length} | ${s(runMs)} | ${s(mean(lat))} | ${s(quantile(lat, 0.5))} | ${s(Math.max(...lat))} | ` +
				`${mean(r.jobs.map((j) => j.calls)).toFixed(1)} | ${sim.calls.toFixed(1)} | ${s(sim.latencyMs)} |`,
		);
	}
	const { hello, read, create } = creation;
	const share429 = (r) => `${(((r.statuses[429] ?? 0) / Math.max(1, r.requests)) * 100).toFixed(1)} %`;
	lines.push(
		"",
		"| Route | Requests/s | p50 (ms) | p99 (ms) | 429 |",
		"|---|---:|---:|---:|---:|",
		...[
			["`/__bench/hello` (baseline)", hello],
			["`GET /v1/jobs/{id}`", read],
			["`POST /v1/jobs` (jobs created/s)", create],
		].map(
			([name, r]) =>
				`| ${name} | ${r.rps.toFixed(0)} | ${r.p50Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${share429(r)} |`,
		),
		"",
		`Ratios: jobs created / job reads ${(create.rps / read.rps).toFixed(2)}×, jobs created / hello ${(create.rps / hello.rps).toFixed(3)}×.`,
		`Completion: the benchmark plays the GPU worker on the RunPod emulator (\`#emu:manual\`: it moves each job itself, relays ` +
			`its transfers through the Worker and, for the webhook backend, delivers RunPod's webhook the moment the job completes) ` +
			`and times from that completion to the first \`succeeded\` seen by a client polling every ${CLIENT_POLL_MS} ms (from half a second before it); calls ` +
			`are /run, /status and /cancel for the job in a request log in front of the emulator (plus ${completion.health} /health ` +
			"calls in all); the simulated columns are bench/backends.mjs's model for the same job length and policy, with its own " +
			"assumptions (0–5 s queue delay, 80 ms /status round trip, 300 ms webhook delivery, 5 % of webhooks lost), where this " +
			"run has no queue delay, loopback round trips and every webhook delivered at once. " +
			`Creation: closed-loop load on loopback (bench/lib/load.mjs), ${CONCURRENCY} keep-alive connections, ${WARMUP_MS / 1000} s ` +
			`warm-up, ${DURATION_MS / 1000} s counted per route, the created jobs submitted to a pod emulator; generous rate and ` +
			"concurrency limits are set through the vars, so 429s would be refusals the limits still made. Local D1 and Durable " +
			"Object state on tmpfs, as in the requests benchmark.",
	);
	console.log(lines.join("\n"));
}

main().catch((err) => {
	console.error(err);
	process.exit(1);
});
