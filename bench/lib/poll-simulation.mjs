// The JobDO's backend polling in simulated time (no network, no Worker): backend API calls per job and the time from
// the job's completion at the backend to `succeeded`, per policy. Used by bench/backends.mjs for its table and by
// bench/jobs.mjs for the simulated figure printed beside its measured one.
//
// Policies:
//   fixed-2s          the usual client loop: /status every 2 s.
//   adaptive          the JobDO's poll loop (src/jobs/backoff.ts pollDelayMs: a tenth of the job's age, 1–30 s).
//   adaptive+webhook  the same loop, plus RunPod's webhook: on completion RunPod POSTs to the Worker, which pokes
//                     the JobDO to poll /status at once (the webhook is a hint; /status confirms). A share of webhooks
//                     is lost (`webhookLoss`), and then the loop finds the job on its own.
//   webhook+slow-poll NOT IMPLEMENTED, a proposal: with a webhook, the fallback loop could back off to 2 min (well
//                     inside RunPod's 30-minute result retention), trading lost-webhook latency for fewer calls.
//   predicted         the JobDO's loop now (src/jobs/backoff.ts nextPollDelayMs, imported, not copied): polls aimed
//                     at the end predicted from the worker's progress percent over its time running, else from the
//                     model's throughput; no webhook.
//   predicted+webhook the same with RunPod's webhook (polls only the fallback for a lost one).
// The simulated worker's progress is not linear in time (percent = 100·(elapsed/run)^γ, γ uniform in 0.8–1.25 per
// job, as downloads, loading and encoding skew it) and the model's predicted run time is off by up to ±30 %.
// Calls count /run, every /status and nothing else (the webhook is RunPod calling us).
import "./typescript-imports.mjs";

const { nextPollDelayMs } = await import("../../src/jobs/backoff.ts");

const POLL_MIN_MS = 1_000;
const POLL_MAX_MS = 30_000;
/** Mirrors pollDelayMs in src/jobs/backoff.ts (kept in step by hand: the bench runs in plain Node). */
export const pollDelayMs = (ageMs) => Math.min(POLL_MAX_MS, Math.max(POLL_MIN_MS, Math.round(Math.max(0, ageMs) / 10)));

/** Time for RunPod's webhook to reach the Worker and the poke to run the DO's alarm. */
export const WEBHOOK_DELAY_MS = 300;
/** One /status round trip. */
export const RTT_MS = 80;

/** A seeded uniform [0, 1) generator, so a table is the same from run to run. */
export function seededRandom(seed) {
	let s = seed >>> 0;
	return () => {
		s = (s * 1664525 + 1013904223) >>> 0;
		return s / 2 ** 32;
	};
}

/**
 * One job: returns `{ calls, latencyMs }` under `policy`, the job running `runMs` after `queueMs` in the queue.
 * The job starts at a random phase of the Worker's clock, so an average over jobs is an average over phases.
 */
export function simulate(
	policy,
	runMs,
	queueMs,
	{ random, webhookLoss = 0.05, webhookDelayMs = WEBHOOK_DELAY_MS, rttMs = RTT_MS },
) {
	const submittedAt = random() * 1000;
	const startAt = submittedAt + queueMs;
	const doneAt = startAt + runMs;
	const gamma = 0.8 + random() * 0.45;
	const expectedRunMs = runMs * (0.7 + random() * 0.6);
	let calls = 1; // POST /run
	let t = submittedAt;
	let seenRunningAt = null;
	let percent;
	const webhookAt = policy.includes("webhook") && random() >= webhookLoss ? doneAt + webhookDelayMs : Infinity;
	for (;;) {
		const age = t - submittedAt;
		const delay =
			policy === "fixed-2s"
				? 2000
				: policy === "webhook+slow-poll"
					? Math.min(120_000, Math.max(POLL_MIN_MS, Math.round(age / 5)))
					: policy.startsWith("predicted")
						? nextPollDelayMs({
								ageMs: age,
								runningMs: seenRunningAt === null ? null : t - seenRunningAt,
								percent,
								expectedRunMs,
								webhook: policy.includes("webhook"),
							})
						: pollDelayMs(age);
		let next = t + delay;
		if (webhookAt < next && webhookAt > t) next = webhookAt;
		t = next;
		calls += 1; // GET /status
		if (t + rttMs / 2 >= doneAt) return { calls, latencyMs: t + rttMs - doneAt };
		// What this /status said: still queued, or running with the worker's progress.
		if (t >= startAt) {
			seenRunningAt ??= t;
			percent = Math.min(99, Math.floor(100 * ((t - startAt) / runMs) ** gamma));
		}
	}
}

export const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
export const quantile = (xs, q) => {
	const s = [...xs].sort((a, b) => a - b);
	return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
