#!/usr/bin/env node
// Backend API calls per job and the time from a job's completion at the backend to `succeeded` in the JobDO, for
// jobs of 10 s to 10 min, in simulated time (no network, no Worker: the policies are what is compared). Prints a
// markdown table. Usage: node bench/backends.mjs [--samples N] [--seed S] [--webhook-loss P]
//
// Policies: see bench/lib/poll-simulation.mjs. Calls count /run, every /status and nothing else (the webhook is
// RunPod calling us). Each sample starts the job at a random phase of the loop and gives it a random queue delay, so
// the latency is an average over phases.
import { mean, quantile, RTT_MS, seededRandom, simulate, WEBHOOK_DELAY_MS } from "./lib/poll-simulation.mjs";

const args = process.argv.slice(2);
const opt = (name, fallback) => {
	const i = args.indexOf(`--${name}`);
	return i >= 0 && args[i + 1] !== undefined ? Number(args[i + 1]) : fallback;
};
const SAMPLES = opt("samples", 500);
const WEBHOOK_LOSS = opt("webhook-loss", 0.05);
const random = seededRandom(opt("seed", 42));

const fmt = (ms) => (ms / 1000).toFixed(2);

const LENGTHS = [10, 30, 60, 180, 300, 600];
const POLICIES = ["fixed-2s", "adaptive", "adaptive+webhook", "webhook+slow-poll", "predicted", "predicted+webhook"];

const rows = [];
for (const seconds of LENGTHS) {
	for (const policy of POLICIES) {
		const calls = [];
		const lat = [];
		for (let i = 0; i < SAMPLES; i++) {
			const queueMs = random() * 5000; // a warm worker picks the job up within seconds
			const r = simulate(policy, seconds * 1000, queueMs, { random, webhookLoss: WEBHOOK_LOSS });
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
			p99: quantile(lat, 0.99),
		});
	}
}

console.log(
	`Simulated: ${SAMPLES} jobs per row, queue delay 0–5 s, /status RTT ${RTT_MS} ms, webhook delivery ${WEBHOOK_DELAY_MS} ms, ${Math.round(WEBHOOK_LOSS * 100)} % of webhooks lost.\n`,
);
console.log(
	"| job length | policy | backend API calls / job | completion → succeeded: mean (s) | p50 (s) | p95 (s) | p99 (s) |",
);
console.log("|---:|---|---:|---:|---:|---:|---:|");
for (const r of rows) {
	const len = r.seconds >= 60 ? `${r.seconds / 60} min` : `${r.seconds} s`;
	console.log(
		`| ${len} | ${r.policy} | ${r.calls.toFixed(1)} | ${fmt(r.mean)} | ${fmt(r.p50)} | ${fmt(r.p95)} | ${fmt(r.p99)} |`,
	);
}
