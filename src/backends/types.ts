import type { Estimate } from "../jobs/eta";
import type { JobSpec } from "../jobs/record";
import type { JobProgress, VideoOutput } from "../jobs/state";
import type { FilledWorkflow } from "../models/fill";
import type { BackendKind } from "../schemas/backends";
import type { Model } from "../schemas/jobs";
import type { Breaker } from "./breaker";
import type { BackendResult } from "./failure";

/** The input of one GPU job, per docs/gpu-job-protocol.md. */
export interface GpuJobInput {
	model: Model;
	/** `sha256`: what `complete` verified; the worker fails the job with `input_changed` on other bytes. */
	inputs: {
		image: { url: string; content_type: string; sha256?: string };
		audio?: { url: string; content_type: string; sha256?: string };
	};
	params: Record<string, string | number>;
	/**
	 * A ComfyUI model's workflow, filled from its manifest with the job's parameters: the GPU worker and the
	 * `comfyui` adapter run this graph, so a model registered at run time needs no redeploy.
	 */
	workflow?: FilledWorkflow;
	output: {
		content_type: "video/mp4";
		put: { url: string; headers: Record<string, string>; max_size: number };
		/** Where to ask for part URLs when the video exceeds `put.max_size` (src/storage/output.ts). */
		parts_url?: { url: string; headers: Record<string, string> };
	};
	health_check?: false;
}

export type RemoteState = "queued" | "running" | "completed" | "failed" | "canceled" | "lost";

export interface PollStatus {
	state: RemoteState;
	progress?: JobProgress;
	/** The video the worker reports having written (on `completed`). */
	output?: VideoOutput;
	/** The worker's error (on `failed`). */
	error?: { code: string; message: string };
	/** GPU execution time, for the cost. */
	executionMs?: number;
	/** Time spent queued at the backend. */
	delayMs?: number;
	/** The GPU the run used, as the worker names it (on `completed`, when it says). */
	gpu?: string;
	/** The GPU worker's recent JSON log lines about the job, when the answer carries them. */
	logs?: string[];
}

export interface HealthReport {
	reachable: boolean;
	latency_ms: number;
	details: Record<string, unknown>;
}

/** The job an adapter works for. */
export interface JobContext {
	id: string;
	/** Origin the backend uses to reach the Worker (the RunPod webhook). */
	origin: string;
	/** The job's inputs in R2 (the ComfyUI kinds upload them themselves). */
	inputs: JobSpec["inputs"];
	/** Where the current submission's video goes (the kinds that store it themselves). */
	videoKey: string;
	/** The number a submit made now gives its submission: retries of a submit that failed keep it. */
	submission: number;
	/** The job's own limits, for backends that enforce them themselves (RunPod's per-job policy). */
	limits: { startBy?: string; maxRuntimeS?: number };
}

/** One job's runs on a backend. Never throws for remote failures: it returns a `BackendFailure`. */
export interface JobRun {
	/** `pricePerSecondUsd`: the price of the machine the job landed on, when the backend knows it (vast.ai). */
	submit(input: GpuJobInput): Promise<BackendResult<{ remoteId: string; pricePerSecondUsd?: number }>>;
	poll(remoteId: string): Promise<BackendResult<PollStatus>>;
	cancel(remoteId: string): Promise<BackendResult<Record<never, never>>>;
}

/** One GPU backend: its health, and the adapter for each job it runs. */
export interface GpuBackend {
	readonly kind: BackendKind;
	/** Whether it calls the Worker back when a job ends (RunPod's webhook), so polls are only the fallback. */
	readonly webhooks?: boolean;
	health(): Promise<HealthReport>;
	forJob(job: JobContext): JobRun;
}

/** What a backend's admission object (the BackendDO) answers a job asking for a slot. */
export type AcquireResult = (
	| { granted: true; probe: boolean }
	/** `position`: 1-based place in the fair queue; `ahead`: slot holders plus the jobs queued before it. */
	| { granted: false; reason: "full"; position: number; ahead: number }
	/** `refusal`: the backend's last failure refused every job (its key, its endpoint); a job meets it at once. */
	| { granted: false; reason: "circuit_open"; retry_at: number; refusal?: { message: string; code?: string } }
) & {
	/** What the backend's recorded runs say about this job (when it said what its work is). */
	estimate?: Estimate;
};

export interface AcquireRequest {
	jobId: string;
	accountId: string;
	/** This backend's name: a holder whose job now names another backend has moved away. */
	backend: string;
	maxConcurrency: number;
	/** The job's priority rank (0 low, 1 normal, 2 high): orders the account's own waiting jobs. */
	priority?: number;
	/** The job's model and work, for the estimate of its run (src/jobs/eta.ts). */
	work?: { model: string; units: number; seed_s_per_unit: number | null };
}

/** What the router needs to know of a backend right now (the BackendDO's `snapshot`). */
export interface BackendSnapshot {
	in_flight: number;
	waiting: number;
	breaker: Breaker;
}
