/**
 * When a job should start and finish (`eta` on the job), as pure functions of measured data, so the benchmark
 * (bench/eta.mjs) runs exactly this code. A job's execution time is fit per model and backend from its completed
 * runs as a line in its work (frames × megapixels); with too few runs it comes from the model's manifest throughput
 * figure, or else a default. A waiting job's start follows from the jobs ahead of it and the backend's recorded run
 * times; a job the backend holds starts after the backend's recorded queue delay; a running job's finish is
 * refined from its progress.
 */

/** One completed run at a backend: its work, how long it executed, and how long the backend queued it. */
export interface RunSample {
	model: string;
	units: number;
	exec_ms: number;
	delay_ms: number | null;
}

export type EtaBasis = "measured" | "manifest" | "default" | "progress";

/** What a backend's measurements say about one job, as of `at` (epoch ms). */
export interface Estimate {
	exec_ms: number;
	basis: Exclude<EtaBasis, "progress">;
	/** Completed runs of the model at the backend that the fit used. */
	samples: number;
	/** How long the jobs ahead of it should take to make room (0 when it holds or gets a slot). */
	wait_ms: number;
	/** The backend's recorded queue delay (RunPod's `delayTime`: its queue and any cold start); 0 when unknown. */
	delay_ms: number;
}

export interface Eta {
	start_at: string;
	finish_at: string;
	basis: EtaBasis;
	samples: number;
}

/** Runs of a model that the fit uses (the newest); older ones no longer describe the backend. */
export const FIT_WINDOW = 50;
/** Seconds per unit of work (a frame of a megapixel) for a model without measurements or a throughput figure. */
export const DEFAULT_SECONDS_PER_UNIT = 1;
/** The fixed cost of a run besides its frames (loading, encoding, upload), before any run is measured. */
export const DEFAULT_OVERHEAD_MS = 5_000;

/** What a job's work is measured in: frames times megapixels. */
export function workUnits(frames: number, width: number, height: number): number {
	return Math.max(1, frames) * ((width * height) / 1e6);
}

/** A model's seconds per unit from its manifest throughput figure (seconds per frame at a resolution). */
export function secondsPerUnit(t: { seconds_per_frame: number; width: number; height: number }): number {
	return t.seconds_per_frame / ((t.width * t.height) / 1e6);
}

function mean(xs: number[]): number {
	return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/**
 * The execution time of `units` of work from the model's runs at the backend: a least-squares line through them
 * when they span different sizes (intercept: the fixed cost), else their mean time per unit; with no runs, the
 * manifest's figure or the default.
 */
export function estimateExecution(
	runs: readonly RunSample[],
	units: number,
	seedSecondsPerUnit: number | null,
): Pick<Estimate, "exec_ms" | "basis" | "samples"> {
	const n = runs.length;
	if (n === 0) {
		const perUnit = seedSecondsPerUnit ?? DEFAULT_SECONDS_PER_UNIT;
		return {
			exec_ms: Math.round(DEFAULT_OVERHEAD_MS + perUnit * units * 1000),
			basis: seedSecondsPerUnit === null ? "default" : "manifest",
			samples: 0,
		};
	}
	const xs = runs.map((r) => r.units);
	const ys = runs.map((r) => r.exec_ms);
	const mx = mean(xs);
	const my = mean(ys);
	const sxx = xs.reduce((a, x) => a + (x - mx) ** 2, 0);
	if (n >= 3 && sxx > 0 && Math.max(...xs) > 1.2 * Math.min(...xs)) {
		const slope = xs.reduce((a, x, i) => a + (x - mx) * ((ys[i] ?? 0) - my), 0) / sxx;
		const intercept = my - slope * mx;
		if (slope > 0 && intercept >= 0) {
			return { exec_ms: Math.round(intercept + slope * units), basis: "measured", samples: n };
		}
	}
	// One size only (or a line that does not make sense): the nearest runs' time per unit.
	const perUnit = mean(runs.map((r) => r.exec_ms / Math.max(r.units, 1e-9)));
	return { exec_ms: Math.round(perUnit * units), basis: "measured", samples: n };
}

/** A holder past the mean hold time is expected to need this share of it still (it is late, not done). */
const OVERRUN_SHARE = 0.1;

/**
 * How long until a slot frees for a job with `queuedAhead` jobs before it in the queue, on `slots` slots held for
 * `heldForMs` (how long each holder has held its slot so far), when a job holds a slot `runMs` on average (its
 * queue delay at the backend and its run): each holder frees its slot after what is left of its mean hold, each
 * job ahead then takes the first free slot for a mean hold, and the job gets the next one.
 */
export function queueWaitMs(heldForMs: readonly number[], queuedAhead: number, slots: number, runMs: number): number {
	const free = heldForMs.map((held) => Math.max(runMs - held, runMs * OVERRUN_SHARE));
	while (free.length < Math.max(1, slots)) free.push(0);
	free.sort((a, b) => a - b);
	for (let i = 0; i < queuedAhead; i++) {
		const next = (free.shift() ?? 0) + runMs;
		const at = free.findIndex((f) => f > next);
		free.splice(at === -1 ? free.length : at, 0, next);
	}
	return Math.round(free[0] ?? 0);
}

/** A new job's estimate before its backend has said anything: the manifest's figure (or the default), no wait. */
export function initialEstimate(work: { units: number; seed_s_per_unit: number | null }): Estimate {
	return { ...estimateExecution([], work.units, work.seed_s_per_unit), wait_ms: 0, delay_ms: 0 };
}

/** The backend's recorded queue delay: the mean of its recent runs that reported one. */
export function meanDelayMs(runs: readonly RunSample[]): number {
	const delays = runs.flatMap((r) => (r.delay_ms === null ? [] : [r.delay_ms]));
	return delays.length === 0 ? 0 : Math.round(mean(delays));
}

/** What the ETA reads of the job. */
export interface EtaJob {
	status: string;
	started_at: string | null;
	progress: { percent: number };
	queue?: { reason: string; since: string; retry_at?: string } | null;
}

/**
 * The job's ETA at `nowMs` from the backend's `estimate`. Waiting: its start is after the jobs ahead (or the next
 * try, or the backend's queue delay); running: it started, and below half way the finish blends the estimate with
 * what the progress says, from half way on it is the progress alone.
 */
export function etaOf(job: EtaJob, estimate: Estimate, nowMs: number): Eta {
	const iso = (ms: number) => new Date(Math.round(ms)).toISOString();
	if (job.status === "running" && job.started_at) {
		const started = Date.parse(job.started_at);
		const elapsed = Math.max(0, nowMs - started);
		const byEstimate = Math.max(0, estimate.exec_ms - elapsed);
		const p = job.progress.percent;
		const weight = Math.min(1, p / 50);
		const byProgress = p > 0 ? (elapsed * (100 - p)) / p : byEstimate;
		const remaining = weight * byProgress + (1 - weight) * byEstimate;
		return {
			start_at: iso(started),
			finish_at: iso(nowMs + remaining),
			basis: weight > 0 ? "progress" : estimate.basis,
			samples: estimate.samples,
		};
	}
	const retryAt = job.queue?.retry_at ? Date.parse(job.queue.retry_at) : nowMs;
	let start = nowMs;
	switch (job.queue?.reason) {
		case "waiting_for_capacity":
			// Once granted a slot, it still waits the backend's queue delay.
			start = nowMs + estimate.wait_ms + estimate.delay_ms;
			break;
		case "backend_queued":
			// Counted from when the backend took it, so polls do not push the start back.
			start = Math.max(nowMs, Date.parse(job.queue.since) + estimate.delay_ms);
			break;
		case "backend_unhealthy":
		case "cold_start":
		case "retrying":
			start = Math.max(nowMs, retryAt) + estimate.delay_ms;
			break;
		default:
			start = nowMs + estimate.delay_ms;
	}
	return {
		start_at: iso(start),
		finish_at: iso(start + estimate.exec_ms),
		basis: estimate.basis,
		samples: estimate.samples,
	};
}
