#!/usr/bin/env node
// Backend API calls per job and the time from a job's completion at the backend to `succeeded` in the JobDO, for
// jobs of 10 s to 10 min, in simulated time (no network, no Worker: the policies are what is compared). Prints a
// markdown table. Usage: node bench/backends.mjs [--samples N] [--seed S] [--webhook-loss P]
//
// Policies:
//   fixed-2s          the usual client loop: /status every 2 s.
//   adaptive          the JobDO's poll loop (src/jobs/backoff.ts pollDelayMs: a tenth of the job's age, 1–30 s).
//   adaptive+webhook  the same loop, plus RunPod's webhook: on completion RunPod POSTs to the Worker, which pokes
//                     the JobDO to poll /status at once (the webhook is a hint; /status confirms). A share of webhooks
//                     is lost (--webhook-loss), and then the loop finds the job on its own.
//   webhook+slow-poll NOT IMPLEMENTED, a proposal: with a webhook, the fallback loop could back off to 2 min (well
//                     inside RunPod's 30-minute result retention), trading lost-webhook latency for fewer calls.
// Calls count /run, every /status and nothing else (the webhook is RunPod calling us). Each sample starts the job at
// a random phase of the loop and gives it a random queue delay, so the latency is an average over phases.

const POLL_MIN_MS = 1_000;
const POLL_MAX_MS = 30_000;
/** Mirrors pollDelayMs in src/jobs/backoff.ts (kept in step by hand: the bench runs in plain Node). */
const pollDelayMs = (ageMs) => Math.min(POLL_MAX_MS, Math.max(POLL_MIN_MS, Math.round(Math.max(0, ageMs) / 10)));

const args = process.argv.slice(2);
const opt = (name, fallback) => {
	const i = args.indexOf(`--${name}`);
	return i >= 0 && args[i + 1] !== undefined ? Number(args[i + 1]) : fallback;
};
const SAMPLES = opt("samples", 500);
const WEBHOOK_LOSS = opt("webhook-loss", 0.05);
/** Time for RunPod's webhook to reach the Worker and the poke to run the DO's alarm. */
const WEBHOOK_DELAY_MS = 300;
/** One /status round trip. */
const RTT_MS = 80;

let seed = opt("seed", 42) >>> 0;
const random = () => {
	seed = (seed * 1664525 + 1013904223) >>> 0;
	return seed / 2 ** 32;
};

/** One job: returns {calls, latencyMs} under `policy`, the job running `runMs` after `queueMs` in the queue. */
function simulate(policy, runMs, queueMs) {
	const submittedAt = random() * 1000; // the job's phase relative to the Worker's clock
	const doneAt = submittedAt + queueMs + runMs;
	let calls = 1; // POST /run
	let t = submittedAt;
	const webhookAt = policy.includes("webhook") && random() >= WEBHOOK_LOSS ? doneAt + WEBHOOK_DELAY_MS : Infinity;
	for (;;) {
		const age = t - submittedAt;
		const delay =
			policy === "fixed-2s"
				? 2000
				: policy === "webhook+slow-poll"
					? Math.min(120_000, Math.max(POLL_MIN_MS, Math.round(age / 5)))
					: pollDelayMs(age);
		let next = t + delay;
		if (webhookAt < next && webhookAt > t) next = webhookAt;
		t = next;
		calls += 1; // GET /status
		if (t + RTT_MS / 2 >= doneAt) return { calls, latencyMs: t + RTT_MS - doneAt };
	}
}

const quantile = (xs, q) => {
	const s = [...xs].sort((a, b) => a - b);
	return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const fmt = (ms) => (ms / 1000).toFixed(2);

const LENGTHS = [10, 30, 60, 180, 300, 600];
const POLICIES = ["fixed-2s", "adaptive", "adaptive+webhook", "webhook+slow-poll"];

const rows = [];
for (const seconds of LENGTHS) {
	for (const policy of POLICIES) {
		const calls = [];
		const lat = [];
		for (let i = 0; i < SAMPLES; i++) {
			const queueMs = random() * 5000; // a warm worker picks the job up within seconds
			const r = simulate(policy, seconds * 1000, queueMs);
			calls.push(r.calls);
			lat.push(r.latencyMs);
		}
		rows.push({
			seconds,
			policy,
			calls: mean(calls),
			p50: quantile(lat, 0.5),
			mean: mean(lat),
			p95: quantile(lat, 0.95),
		});
	}
}

console.log(
	`Simulated: ${SAMPLES} jobs per row, queue delay 0–5 s, /status RTT ${RTT_MS} ms, webhook delivery ${WEBHOOK_DELAY_MS} ms, ${Math.round(WEBHOOK_LOSS * 100)} % of webhooks lost.\n`,
);
console.log("| job length | policy | backend API calls / job | completion → succeeded: mean (s) | p50 (s) | p95 (s) |");
console.log("|---:|---|---:|---:|---:|---:|");
for (const r of rows) {
	const len = r.seconds >= 60 ? `${r.seconds / 60} min` : `${r.seconds} s`;
	console.log(`| ${len} | ${r.policy} | ${r.calls.toFixed(1)} | ${fmt(r.mean)} | ${fmt(r.p50)} | ${fmt(r.p95)} |`);
}
