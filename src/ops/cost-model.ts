/**
 * The cost model: what a recorded workload cost, and what it would have cost on each kind of backend.
 * Pure functions with no imports, so `scripts/costs.mjs` (Node, type stripping) and the Worker share them.
 *
 * Three ways to pay for a GPU:
 * - serverless (RunPod): per second of execution, workers scale to zero; cold starts are the price of that.
 * - pod (RunPod Pod): per hour while it runs, whether it works or idles.
 * - vastai (vast.ai instance): per hour, like a pod, usually cheaper and less reliable.
 */

/** Prices per backend kind. Serverless is per second; pods and vast.ai instances per hour. */
export interface Prices {
	serverless_per_second_usd: number;
	pod_per_hour_usd: number;
	vastai_per_hour_usd: number;
}

/**
 * Illustrative defaults for one 80 GB GPU; real prices change, so `npm run costs` takes flags to override them.
 * (Serverless "flex" per-second prices sit well above the same GPU's hourly pod price: that gap is the break-even.)
 */
export const DEFAULT_PRICES: Prices = {
	serverless_per_second_usd: 0.00076,
	pod_per_hour_usd: 1.64,
	vastai_per_hour_usd: 1.2,
};

/** The recorded workload over a window. */
export interface Workload {
	/** Window length in seconds (an always-on pod is paid for all of it). */
	window_seconds: number;
	jobs: number;
	/** Sum of the jobs' GPU execution seconds. */
	gpu_seconds: number;
	/** What the jobs were charged as recorded (their backends' prices at the time). */
	recorded_cost_usd: number;
	/** vast.ai rental time billed but carried by no job (boot and idle), from the usage report's `rentals`. */
	rental_overhead_usd?: number;
}

export interface CostEstimate {
	kind: "serverless" | "pod" | "vastai";
	cost_usd: number;
	/** Always-on GPUs needed (hourly kinds); 0 for serverless. */
	gpus: number;
}

export interface CostReport {
	workload: Workload;
	prices: Prices;
	estimates: CostEstimate[];
	/** GPU seconds busy per GPU-hour at which serverless costs as much as a pod: above it the pod is cheaper. */
	break_even: {
		pod_utilization: number;
		vastai_utilization: number;
		/** GPU seconds over this window at which the two cost the same. */
		pod_gpu_seconds: number;
		vastai_gpu_seconds: number;
		/** The same as jobs in this window, at the recorded mean job length (null without jobs). */
		pod_jobs: number | null;
		vastai_jobs: number | null;
	};
	/** This window's utilization of one always-on GPU (gpu_seconds / window_seconds). */
	utilization: number;
	cheapest: CostEstimate["kind"];
}

const round = (x: number, digits = 6) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Always-on GPUs needed to carry `gpu_seconds` in `window_seconds` (at least one: a pod that runs nothing is still paid). */
export function gpusNeeded(w: Workload): number {
	if (w.window_seconds <= 0) return 1;
	return Math.max(1, Math.ceil(w.gpu_seconds / w.window_seconds));
}

/** Serverless cost: billed seconds at the per-second price. */
export function serverlessCost(gpuSeconds: number, perSecondUsd: number): number {
	return gpuSeconds * perSecondUsd;
}

/** Hourly cost: every GPU is paid for the whole window. */
export function hourlyCost(windowSeconds: number, gpus: number, perHourUsd: number): number {
	return (windowSeconds / 3600) * gpus * perHourUsd;
}

/**
 * The utilization (busy share of each hour, 0..1+) at which paying per second costs as much as paying per hour:
 * per_hour / (per_second × 3600). Above 1 the hourly kind never pays off against serverless.
 */
export function breakEvenUtilization(perSecondUsd: number, perHourUsd: number): number {
	if (perSecondUsd <= 0) return Number.POSITIVE_INFINITY;
	return perHourUsd / (perSecondUsd * 3600);
}

/** Compares the workload's cost on each kind and finds the break-even points. */
export function compareCosts(w: Workload, prices: Prices = DEFAULT_PRICES): CostReport {
	const gpus = gpusNeeded(w);
	const estimates: CostEstimate[] = [
		{ kind: "serverless", cost_usd: round(serverlessCost(w.gpu_seconds, prices.serverless_per_second_usd)), gpus: 0 },
		{ kind: "pod", cost_usd: round(hourlyCost(w.window_seconds, gpus, prices.pod_per_hour_usd)), gpus },
		{ kind: "vastai", cost_usd: round(hourlyCost(w.window_seconds, gpus, prices.vastai_per_hour_usd)), gpus },
	];
	const podU = breakEvenUtilization(prices.serverless_per_second_usd, prices.pod_per_hour_usd);
	const vastU = breakEvenUtilization(prices.serverless_per_second_usd, prices.vastai_per_hour_usd);
	const meanJob = w.jobs > 0 && w.gpu_seconds > 0 ? w.gpu_seconds / w.jobs : null;
	const podSeconds = podU * w.window_seconds;
	const vastSeconds = vastU * w.window_seconds;
	let cheapest = estimates[0] as CostEstimate;
	for (const e of estimates) if (e.cost_usd < cheapest.cost_usd) cheapest = e;
	return {
		workload: w,
		prices,
		estimates,
		break_even: {
			pod_utilization: round(podU),
			vastai_utilization: round(vastU),
			pod_gpu_seconds: round(podSeconds, 3),
			vastai_gpu_seconds: round(vastSeconds, 3),
			pod_jobs: meanJob ? round(podSeconds / meanJob, 2) : null,
			vastai_jobs: meanJob ? round(vastSeconds / meanJob, 2) : null,
		},
		utilization: w.window_seconds > 0 ? round(w.gpu_seconds / w.window_seconds) : 0,
		cheapest: cheapest.kind,
	};
}

/** The p-th percentile (0..100) of values by nearest rank; null for none. */
export function percentile(values: readonly number[], p: number): number | null {
	if (values.length === 0) return null;
	const sorted = [...values].sort((a, b) => a - b);
	const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
	return sorted[Math.min(rank, sorted.length) - 1] ?? null;
}
