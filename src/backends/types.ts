import type { JobProgress, VideoOutput } from "../jobs/state";

/** The kinds of backend the admin API accepts (see the API contract, Backends). */
export const BACKEND_KINDS = ["runpod", "pod", "comfyui", "vastai"] as const;
export type BackendKind = (typeof BACKEND_KINDS)[number];

/** The models the Worker knows how to build inputs for. */
export const MODELS = ["preview", "wan2.2-i2v", "wan2.2-s2v"] as const;
export type Model = (typeof MODELS)[number];

/** A failed call to a backend, classified: `transient` is retried with backoff, `permanent` fails the job. */
export interface BackendFailure {
	ok: false;
	kind: "transient" | "permanent";
	/** The server's Retry-After, when it gave one. */
	retryAfterMs?: number;
	/** Safe to show on the job: never a URL with a signature or a token. */
	message: string;
	/** The backend answered with an error, so it certainly did not take the job (a timeout leaves that open). */
	refused?: boolean;
	/** Not a failure of the backend: it is preparing (a vast.ai instance booting); the breaker ignores it. */
	pending?: boolean;
	/** The backend itself is unusable (key refused, endpoint unknown): it fails every job, not just this one. */
	misconfigured?: boolean;
}

export type BackendResult<T> = ({ ok: true } & T) | BackendFailure;

/** The input of one GPU job, per docs/gpu-job-protocol.md. */
export interface GpuJobInput {
	model: Model;
	inputs: {
		image: { url: string; content_type: string };
		audio?: { url: string; content_type: string };
	};
	params: Record<string, string | number>;
	output: {
		content_type: "video/mp4";
		put: { url: string; headers: Record<string, string> };
		/** Part URLs for a video larger than one part (src/storage/output.ts). */
		multipart?: {
			part_size: number;
			parts: { part_number: number; url: string; headers: Record<string, string> }[];
		};
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
}

export interface HealthReport {
	reachable: boolean;
	latency_ms: number;
	details: Record<string, unknown>;
}

/** One GPU backend. Implementations never throw for remote failures: they return a `BackendFailure`. */
export interface GpuBackend {
	readonly kind: BackendKind;
	/** `pricePerSecondUsd`: the price of the machine the job landed on, when the backend knows it (vast.ai). */
	submit(input: GpuJobInput): Promise<BackendResult<{ remoteId: string; pricePerSecondUsd?: number }>>;
	poll(remoteId: string): Promise<BackendResult<PollStatus>>;
	cancel(remoteId: string): Promise<BackendResult<Record<never, never>>>;
	health(): Promise<HealthReport>;
}
