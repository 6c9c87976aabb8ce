#!/usr/bin/env node
// How far off a job's `eta.finish_at` is, at submission and at 50 % progress, in simulated time: a recorded
// backend's behaviour is not available, so a mix of Wan jobs is replayed against one backend whose run times,
// queue delays and progress follow the assumptions printed with the table. The estimator is the project's own
// (src/jobs/eta.ts, bundled here with esbuild), fed the way the BackendDO feeds it: each job's estimate comes from
// the runs completed before it, its wait from the jobs ahead of it. Prints a markdown section.
// Usage: node bench/eta.mjs [--jobs N] [--seed S] [--slots M] [--load RHO]
import path from "node:path";
import { seededRandom } from "./lib/poll-simulation.mjs";

const root = path.resolve(import.meta.dirname, "..");
const args = process.argv.slice(2);
const opt = (name, fallback) => {
	const i = args.indexOf(`--${name}`);
	return i >= 0 && args[i + 1] !== undefined ? Number(args[i + 1]) : fallback;
};
const JOBS = opt("jobs", 2000);
const SLOTS = opt("slots", 4);
const LOAD = opt("load", 0.85);
const random = seededRandom(opt("seed", 7));

/** The estimator exactly as the Worker runs it. */
async function loadEstimator() {
	const esbuild = await import("esbuild");
	const out = await esbuild.build({
		entryPoints: [path.join(root, "src/jobs/eta.ts")],
		bundle: true,
		write: false,
		format: "esm",
		platform: "neutral",
		logLevel: "error",
	});
	const code = out.outputFiles[0]?.text ?? "";
	return import(`data:text/javascript;base64,${Buffer.from(code).toString("base64")}`);
}

const eta = await loadEstimator();

// The simulated backend and job mix (the assumptions).
const RESOLUTIONS = [
	[480, 480],
	[640, 640],
	[832, 480],
	[1280, 720],
];
const DURATIONS_S = [2, 3, 5, 8];
const FPS = 16;
/** The manifest's figure (wan2.2-i2v.json: 1 s per frame at 640×640), which the true cost is 20 % below. */
const MANIFEST = { seconds_per_frame: 1, width: 640, height: 640 };
const TRUE_S_PER_UNIT = eta.secondsPerUnit(MANIFEST) * 0.8;
const TRUE_OVERHEAD_MS = 15_000;
const NOISE_SIGMA = 0.15;
const COLD_START_RATE = 0.1;

function normal() {
	const u = Math.max(random(), 1e-12);
	return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}
const pick = (xs) => xs[Math.floor(random() * xs.length)];

function makeJob(id, arrival) {
	const [w, h] = pick(RESOLUTIONS);
	const units = eta.workUnits(pick(DURATIONS_S) * FPS, w, h);
	const execMs = (TRUE_OVERHEAD_MS + TRUE_S_PER_UNIT * units * 1000) * Math.exp(NOISE_SIGMA * normal());
	const delayMs = random() < COLD_START_RATE ? 30_000 + random() * 60_000 : 1_000 + random() * 2_000;
	return { id, arrival, units, execMs, delayMs };
}

// Arrivals: Poisson at the rate that keeps the slots `LOAD` busy on average.
const meanUnits =
	(RESOLUTIONS.reduce((a, [w, h]) => a + (w * h) / 1e6, 0) / RESOLUTIONS.length) *
	(DURATIONS_S.reduce((a, d) => a + d, 0) / DURATIONS_S.length) *
	FPS;
const meanHoldMs =
	TRUE_OVERHEAD_MS + TRUE_S_PER_UNIT * meanUnits * 1000 + COLD_START_RATE * 60_000 + (1 - COLD_START_RATE) * 2_000;

const iso = (ms) => new Date(ms).toISOString();

/** Replays `JOBS` jobs arriving at the rate that keeps the slots `load` busy; the errors of each job's ETA. */
function simulate(load) {
	const interarrivalMs = meanHoldMs / (SLOTS * load);
	const jobs = [];
	let t = 0;
	for (let i = 0; i < JOBS; i++) {
		t += -Math.log(Math.max(random(), 1e-12)) * interarrivalMs;
		jobs.push(makeJob(i, t));
	}

	// FIFO over the slots (one account: the fair order is arrival order). A slot is held for the queue delay and the run.
	const slotFree = new Array(SLOTS).fill(0);
	for (const job of jobs) {
		let s = 0;
		for (let i = 1; i < SLOTS; i++) if ((slotFree[i] ?? 0) < (slotFree[s] ?? 0)) s = i;
		job.granted = Math.max(job.arrival, slotFree[s] ?? 0);
		job.start = job.granted + job.delayMs;
		job.finish = job.start + job.execMs;
		slotFree[s] = job.finish;
	}

	/** The runs the BackendDO has recorded by `ms`: the jobs that finished before it, newest first. */
	const byFinish = [...jobs].sort((a, b) => b.finish - a.finish);
	const completedBy = (ms) =>
		byFinish
			.filter((j) => j.finish <= ms)
			.map((j) => ({ model: "wan", units: j.units, exec_ms: j.execMs, delay_ms: j.delayMs }));

	function estimateAt(job, ms, queue) {
		const recorded = completedBy(ms);
		const execution = eta.estimateExecution(recorded.slice(0, eta.FIT_WINDOW), job.units, eta.secondsPerUnit(MANIFEST));
		const recent = recorded.slice(0, 20);
		const delay = eta.meanDelayMs(recent);
		const runMs =
			recent.length > 0
				? recent.reduce((a, r) => a + r.exec_ms + (r.delay_ms ?? 0), 0) / recent.length
				: execution.exec_ms + delay;
		if (!queue) return { ...execution, wait_ms: 0, delay_ms: delay };
		return { ...execution, wait_ms: eta.queueWaitMs(queue.heldFor, queue.queuedAhead, SLOTS, runMs), delay_ms: delay };
	}

	const results = [];
	for (const job of jobs) {
		// At submission: the jobs holding a slot or granted before it are those granted earlier and not finished.
		const before = jobs.filter((o) => o.id < job.id && o.finish > job.arrival);
		const heldFor = before.filter((o) => o.granted <= job.arrival).map((o) => job.arrival - o.granted);
		const queuedAhead = before.length - heldFor.length;
		const waits = job.granted > job.arrival;
		const queue = { reason: waits ? "waiting_for_capacity" : "backend_queued", since: iso(job.arrival) };
		const atSubmit = eta.etaOf(
			{ status: "queued", started_at: null, progress: { percent: 0 }, queue },
			estimateAt(job, job.arrival, waits ? { heldFor, queuedAhead } : null),
			job.arrival,
		);
		// At half way: the worker reports progress with a few percent of jitter, the estimate is the one of its admission.
		const half = job.start + job.execMs / 2;
		const percent = Math.max(1, Math.min(99, Math.round(50 + normal() * 3)));
		const atHalf = eta.etaOf(
			{ status: "running", started_at: iso(job.start), progress: { percent } },
			estimateAt(job, job.granted, null),
			half,
		);
		results.push({
			job,
			basis: atSubmit.basis,
			submitErr: Math.abs(Date.parse(atSubmit.finish_at) - job.finish),
			halfErr: Math.abs(Date.parse(atHalf.finish_at) - job.finish),
			duration: job.finish - job.arrival,
			waited: waits,
		});
	}
	return results;
}

const quantile = (xs, q) => {
	const s = [...xs].sort((a, b) => a - b);
	return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
};
const pct = (x) => `${(x * 100).toFixed(1)} %`;
const sec = (ms) => (ms / 1000).toFixed(1);

/** The `p` quantile of a job's `key` (an error or its duration), in ms, or as a share of its duration. */
const q = (rs, key, p, relative = false) =>
	quantile(
		rs.map((r) => (relative ? r[key] / r.duration : r[key])),
		p,
	);

function row(label, rs) {
	const cells = [
		rs.length,
		sec(q(rs, "duration", 0.5)),
		sec(q(rs, "submitErr", 0.5)),
		sec(q(rs, "submitErr", 0.9)),
		pct(q(rs, "submitErr", 0.5, true)),
		pct(q(rs, "submitErr", 0.9, true)),
		sec(q(rs, "halfErr", 0.5)),
		sec(q(rs, "halfErr", 0.9)),
		pct(q(rs, "halfErr", 0.5, true)),
		pct(q(rs, "halfErr", 0.9, true)),
	];
	return `| ${label} | ${cells.join(" | ")} |`;
}

const results = simulate(LOAD);
const lighter = simulate(0.5);
const heavier = simulate(0.95);

const lines = [
	"## ETA: error of `eta.finish_at` at submission and at 50 % progress",
	"",
	`Simulated (no recorded mix is available yet): ${JOBS} Wan jobs on one backend of ${SLOTS} slots at ${Math.round(LOAD * 100)} % load ` +
		"(Poisson arrivals, one account, so the fair queue is FIFO). Each job: a resolution of 480×480, 640×640, 832×480 " +
		`or 1280×720 and 2, 3, 5 or 8 s at ${FPS} fps; true run time ${TRUE_OVERHEAD_MS / 1000} s + ${TRUE_S_PER_UNIT.toFixed(2)} s per ` +
		`frame-megapixel (20 % below the manifest's figure, which seeds the estimate) × lognormal noise (σ ${NOISE_SIGMA}); ` +
		`queue delay at the backend 1–3 s, or a 30–90 s cold start for ${COLD_START_RATE * 100} % of jobs; progress at ` +
		"half way reported with ±3 points of noise. Error: |estimated − actual finish|, in seconds and as a share of " +
		"the job's duration (submission to finish).",
	"",
	"| jobs | n | duration p50 (s) | at submission: p50 (s) | p90 (s) | p50 (% of duration) | p90 (%) | at 50 %: p50 (s) | p90 (s) | p50 (%) | p90 (%) |",
	"|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
	row("all", results),
	row("first 20 (manifest figure, few runs)", results.slice(0, 20)),
	row("after the first 100", results.slice(100)),
	row(
		"started at once",
		results.filter((r) => !r.waited),
	),
	row(
		"waited for a slot",
		results.filter((r) => r.waited),
	),
	row("all, at 50 % load", lighter),
	row("all, at 95 % load", heavier),
	"",
	`The last two rows replay another ${JOBS} jobs each at other loads (the same mix, drawn on from the same seed).`,
	"",
	"Command: `node bench/eta.mjs` (or `npm run bench -- eta`).",
];
console.log(lines.join("\n"));
