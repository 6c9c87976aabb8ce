/**
 * What one job costs on Cloudflare's side (Worker requests and CPU, Durable Object requests and active time, D1 and
 * Durable Object SQLite rows, R2 operations and storage) beside what its GPU time costs at RunPod, from a count of
 * the platform operations the job causes. Pure functions (their one import, the poll timing, has none either), so
 * `scripts/costs.mjs` (Node) and the benchmarks share them. The counts follow the code paths one by one (each is
 * named where it is counted); the provider polls come from the JobDO's own poll timing (`countProviderPolls`).
 */
import { nextPollDelayMs } from "../jobs/backoff.ts";

/**
 * Cloudflare's published paid-plan rates (USD), beyond each plan's included usage (which this model ignores: a busy
 * deployment spends it early in the month, and the marginal job is what matters):
 * - Workers: $0.30 per million requests, $0.02 per million CPU milliseconds
 *   (https://developers.cloudflare.com/workers/platform/pricing/)
 * - Durable Objects: $0.15 per million requests (RPC calls and alarms included), $12.50 per million GB-s of
 *   duration at 128 MB per object; SQLite storage $0.001 per million rows read, $1.00 per million rows written
 *   (https://developers.cloudflare.com/durable-objects/platform/pricing/)
 * - D1: $0.001 per million rows read, $1.00 per million rows written
 *   (https://developers.cloudflare.com/d1/platform/pricing/)
 * - R2 Standard: $4.50 per million Class A, $0.36 per million Class B operations, $0.015 per GB-month
 *   (https://developers.cloudflare.com/r2/pricing/)
 */
export const CLOUDFLARE_RATES = {
	worker_request: 0.3 / 1e6,
	worker_cpu_ms: 0.02 / 1e6,
	do_request: 0.15 / 1e6,
	do_gb_s: 12.5 / 1e6,
	row_read: 0.001 / 1e6,
	row_written: 1 / 1e6,
	r2_class_a: 4.5 / 1e6,
	r2_class_b: 0.36 / 1e6,
	r2_gb_month: 0.015,
} as const;

/** RunPod Serverless, H100 PRO (80 GB), flex worker: $0.00116 per second (https://docs.runpod.io/serverless/pricing). */
export const RUNPOD_H100_PER_SECOND_USD = 0.00116;

/** A Durable Object's memory for duration billing: 128 MB. */
const DO_GB = 0.128;

export interface JobScenario {
	/** GPU execution time of the job. */
	runSeconds: number;
	/** Seconds queued at the backend before it runs. */
	queueSeconds: number;
	/** Whether the backend calls back on completion (RunPod's webhook). */
	webhook: boolean;
	/** Provider `/status` calls the JobDO makes (from its poll timing); `/run` is counted apart. */
	providerPolls: number;
	/** How the client learns of the end: `GET /v1/jobs/{id}` every `pollSeconds`, or the event stream. */
	client: { kind: "poll"; pollSeconds: number } | { kind: "events"; reauthSeconds: number };
	/** Whether signed URLs are R2-presigned (bytes bypass the Worker) or Worker-signed. */
	signer: "r2" | "worker";
	inputBytes: number;
	videoBytes: number;
	/** How long the input and the video stay in R2. */
	keptDays: number;
	/** Average Worker CPU per request (ms) and Durable Object active time per call (ms): the model's assumptions. */
	cpuMsPerRequest: number;
	doActiveMsPerCall: number;
}

export interface OperationCounts {
	worker_requests: number;
	worker_cpu_ms: number;
	do_requests: number;
	do_gb_s: number;
	do_rows_read: number;
	do_rows_written: number;
	d1_rows_read: number;
	d1_rows_written: number;
	r2_class_a: number;
	r2_class_b: number;
	r2_gb_days: number;
}

export interface JobCostReport {
	counts: OperationCounts;
	/** Cost per component, USD. */
	usd: Record<"workers" | "durable_objects" | "d1" | "r2", number>;
	platform_usd: number;
	gpu_usd: number;
	/** Platform cost over GPU cost. */
	ratio: number;
}

/** Counts the platform operations one job causes under `s` (see the comments for each path). */
export function countOperations(s: JobScenario): OperationCounts {
	const lifeSeconds = s.queueSeconds + s.runSeconds;
	const viaWorker = s.signer === "worker" ? 1 : 0;
	// Client reads while the job lives: one GET per poll, or one event stream that re-checks its key.
	const clientReads = s.client.kind === "poll" ? Math.ceil(lifeSeconds / s.client.pollSeconds) + 1 : 1;
	const streamReauths = s.client.kind === "events" ? Math.ceil(lifeSeconds / s.client.reauthSeconds) : 0;
	// Worker requests: upload create + complete, the upload's PUT (Worker-signed only), job create, the client's reads,
	// the GPU worker's input GET and output PUT (Worker-signed only), RunPod's webhook, the video download.
	const authed = 2 + 1 + clientReads + 1;
	const worker_requests = authed + viaWorker * 3 + (s.webhook ? 1 : 0);
	// JobDO alarms: submit, each provider poll, the finish; plus create, each client read (or the stream), the
	// Worker-signed PUT's writability check, the webhook's poke, the video's read.
	const alarms = 1 + s.providerPolls + 1;
	const jobDoCalls = 1 + alarms + clientReads + viaWorker + (s.webhook ? 1 : 0) + 1;
	// Gate: one admission per authenticated request and per stream re-check. BackendDO: acquire and release.
	const gateCalls = authed + streamReauths;
	const do_requests = jobDoCalls + gateCalls + 2;
	// Active time: each call's work; an open event stream keeps the JobDO from hibernating for the job's life.
	const streamSeconds = s.client.kind === "events" ? lifeSeconds : 0;
	const do_gb_s = ((do_requests * s.doActiveMsPerCall) / 1000 + streamSeconds) * DO_GB;
	// DO SQLite: the gate writes its bucket through on every charge (one row); the JobDO saves the job row and a
	// history row at each change (create, submitted, started, a progress change per poll, the end) and its outbox
	// row per webhook message; reads are the job row per call.
	const changes = 3 + s.providerPolls + 1;
	const do_rows_written = gateCalls + changes * 2 + 2;
	const do_rows_read = jobDoCalls + gateCalls;
	// D1: upload row insert + update, slot reservation + release, job index upsert per change, usage at the end;
	// reads: the upload, the model heads (3), the backend, the key row when the gate's copy is older than 30 s.
	const d1_rows_written = 2 + 2 + changes + 1;
	const d1_rows_read = 1 + 3 + 1 + Math.ceil(lifeSeconds / 30);
	// R2: the input's PUT and the video's PUT (Class A); the upload check at complete (head + read), the GPU
	// worker's input GET, the video's check at success (head + read), the download (Class B).
	const r2_class_a = 2;
	const r2_class_b = 2 + 1 + 2 + 1;
	const r2_gb_days = ((s.inputBytes + s.videoBytes) / 1e9) * s.keptDays;
	return {
		worker_requests,
		worker_cpu_ms: worker_requests * s.cpuMsPerRequest,
		do_requests,
		do_gb_s,
		do_rows_read,
		do_rows_written,
		d1_rows_read,
		d1_rows_written,
		r2_class_a,
		r2_class_b,
		r2_gb_days,
	};
}

/** Prices the counts at Cloudflare's rates and the GPU time at RunPod's H100 rate. */
export function priceJob(s: JobScenario, gpuPerSecondUsd = RUNPOD_H100_PER_SECOND_USD): JobCostReport {
	const c = countOperations(s);
	const r = CLOUDFLARE_RATES;
	const usd = {
		workers: c.worker_requests * r.worker_request + c.worker_cpu_ms * r.worker_cpu_ms,
		durable_objects:
			c.do_requests * r.do_request +
			c.do_gb_s * r.do_gb_s +
			c.do_rows_read * r.row_read +
			c.do_rows_written * r.row_written,
		d1: c.d1_rows_read * r.row_read + c.d1_rows_written * r.row_written,
		r2: c.r2_class_a * r.r2_class_a + c.r2_class_b * r.r2_class_b + (c.r2_gb_days / 30) * r.r2_gb_month,
	};
	const platform_usd = usd.workers + usd.durable_objects + usd.d1 + usd.r2;
	const gpu_usd = s.runSeconds * gpuPerSecondUsd;
	return { counts: c, usd, platform_usd, gpu_usd, ratio: platform_usd / gpu_usd };
}

/** The four cases of a 5-minute Wan job: with and without RunPod's webhook, a client polling every 2 s or following events. */
export function wanJobScenarios(providerPolls: {
	webhook: number;
	polling: number;
}): { name: string; s: JobScenario }[] {
	const base = {
		runSeconds: 300,
		queueSeconds: 5,
		signer: "worker" as const,
		inputBytes: 500_000,
		videoBytes: 5_000_000,
		keptDays: 30,
		cpuMsPerRequest: 2,
		doActiveMsPerCall: 5,
	};
	const poll = { kind: "poll" as const, pollSeconds: 2 };
	const events = { kind: "events" as const, reauthSeconds: 15 };
	return [
		{
			name: "webhook, client polls every 2 s",
			s: { ...base, webhook: true, providerPolls: providerPolls.webhook, client: poll },
		},
		{
			name: "webhook, client follows events",
			s: { ...base, webhook: true, providerPolls: providerPolls.webhook, client: events },
		},
		{
			name: "no webhook, client polls every 2 s",
			s: { ...base, webhook: false, providerPolls: providerPolls.polling, client: poll },
		},
		{
			name: "no webhook, client follows events",
			s: { ...base, webhook: false, providerPolls: providerPolls.polling, client: events },
		},
	];
}

/**
 * The `/status` calls the JobDO's poll timing makes for one job that runs `runMs` after `queueMs` in the queue,
 * with a worker whose progress percent grows linearly and a model whose throughput predicts `runMs`, until it learns
 * of the completion (from a poll, or from RunPod's webhook 0.3 s after it when `webhook`).
 */
export function countProviderPolls(runMs: number, queueMs: number, webhook: boolean): number {
	const doneAt = queueMs + runMs;
	let t = 0;
	let polls = 0;
	let seenRunningAt: number | null = null;
	let percent: number | undefined;
	for (;;) {
		const delay = nextPollDelayMs({
			ageMs: t,
			runningMs: seenRunningAt === null ? null : t - seenRunningAt,
			percent,
			expectedRunMs: runMs,
			webhook,
		});
		if (webhook && t + delay >= doneAt + 300) return polls + 1;
		t += delay;
		polls += 1;
		if (t >= doneAt) return polls;
		if (t >= queueMs) {
			seenRunningAt ??= t;
			percent = Math.min(99, Math.floor((100 * (t - queueMs)) / runMs));
		}
	}
}
