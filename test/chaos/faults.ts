// The fault catalogue of the chaos run: what each fault asks of the emulators (`#emu:` directives, see
// test/emulators/pod/server.ts, runpod/server.ts and comfyui/server.ts), whether a job survives it, and the error
// code it ends with.
import type { Rng } from "./prng";

export type BackendKind = "pod" | "runpod" | "comfy" | "vast";
export const BACKENDS: readonly BackendKind[] = ["pod", "runpod", "comfy", "vast"];

export interface FaultKind {
	name: string;
	/** One fault per slot and job: the emulators read only the first directive of a name. */
	slot: "run" | "status" | "vanish" | "slow" | "webhook" | "fail" | "upload" | "view" | "chunked" | "backend";
	on: readonly BackendKind[];
	/** The job must end `failed` with `code`; otherwise it must still end `succeeded`. */
	permanent: boolean;
	directives(rng: Rng): string[];
	code?(backend: BackendKind): string;
	/**
	 * A fault of the whole backend (vast.ai's account or market): the job goes to `chaos-<kind>-<variant>`, a backend
	 * whose emulator scope has that fault (chaos.test.ts `VAST_VARIANTS`).
	 */
	variant?: string;
}

const BOTH = ["pod", "runpod"] as const;

export const FAULTS: readonly FaultKind[] = [
	// Transient: the job must still succeed.
	{
		name: "run-5xx",
		slot: "run",
		on: BOTH,
		permanent: false,
		directives: (r) => [`run=${r.pick([500, 502, 503])}*${r.int(1, 2)}`],
	},
	{ name: "run-429", slot: "run", on: BOTH, permanent: false, directives: () => ["run=429", "retry-after=1"] },
	{ name: "run-timeout", slot: "run", on: BOTH, permanent: false, directives: () => ["run=timeout"] },
	{
		name: "status-5xx",
		slot: "status",
		on: BOTH,
		permanent: false,
		directives: (r) => [`status=${r.pick([500, 502, 503])}*${r.int(1, 3)}`],
	},
	{
		name: "status-429",
		slot: "status",
		on: BOTH,
		permanent: false,
		directives: () => ["status=429*2", "retry-after=1"],
	},
	{ name: "status-timeout", slot: "status", on: BOTH, permanent: false, directives: () => ["status=timeout"] },
	{ name: "job-vanished", slot: "vanish", on: BOTH, permanent: false, directives: () => ["vanish"] },
	{ name: "cold-start", slot: "slow", on: ["runpod"], permanent: false, directives: () => ["slow=3"] },
	{ name: "webhook-lost", slot: "webhook", on: ["runpod"], permanent: false, directives: () => ["webhook=lost"] },
	{
		name: "webhook-duplicated",
		slot: "webhook",
		on: ["runpod"],
		permanent: false,
		directives: () => ["webhook=twice"],
	},
	// Permanent: the job must fail, with this code. Repeated (`*9`) for every submission of the job, as a real input
	// refused or a worker that always breaks would be: a restart can land between the backend's answer and the job
	// recording it, and the resubmission must meet the same fault.
	{
		name: "worker-failed",
		slot: "fail",
		on: BOTH,
		permanent: true,
		directives: () => ["fail=cuda_oom"],
		// The pod worker reports `{code, message}`; a RunPod handler's error is a bare string.
		code: (b) => (b === "pod" ? "cuda_oom" : "inference_failed"),
	},
	{
		name: "worker-crashed",
		slot: "fail",
		on: ["runpod"],
		permanent: true,
		directives: () => ["crash"],
		code: () => "inference_failed",
	},
	{
		name: "execution-timed-out",
		slot: "fail",
		on: ["runpod"],
		permanent: true,
		directives: () => ["timedout"],
		code: () => "timeout",
	},
	{
		name: "run-refused",
		slot: "run",
		on: BOTH,
		permanent: true,
		directives: () => ["run=400*9"],
		code: () => "backend_error",
	},
	{
		name: "job-lost-for-good",
		slot: "vanish",
		on: BOTH,
		permanent: true,
		directives: () => ["vanish*9"],
		code: () => "lost",
	},
	{
		name: "upload-truncated",
		slot: "upload",
		on: BOTH,
		permanent: true,
		directives: () => ["truncate*9"],
		code: () => "output_verification_failed",
	},
	{
		name: "upload-corrupted",
		slot: "upload",
		on: BOTH,
		permanent: true,
		directives: () => ["corrupt*9"],
		code: () => "output_verification_failed",
	},
	// A bare ComfyUI server (the Worker uploads, queues, follows /history and /queue, streams /view into R2), behind
	// a pod's Caddy. Its faults follow the prompt text, so the permanent ones meet every resubmission by themselves.
	// Transient: Caddy's 502 while ComfyUI restarts, or no answer while it stalls; a prompt forgotten once.
	{
		name: "comfy-submit-502",
		slot: "run",
		on: ["comfy"],
		permanent: false,
		directives: (r) => [`prompt=502*${r.int(1, 2)}`],
	},
	// The prompt is queued but the answer is lost: the Worker's retry finds that prompt and follows it.
	{ name: "comfy-submit-timeout", slot: "run", on: ["comfy"], permanent: false, directives: () => ["prompt=timeout"] },
	{
		name: "comfy-history-502",
		slot: "status",
		on: ["comfy"],
		permanent: false,
		directives: (r) => [`history=502*${r.int(1, 3)}`],
	},
	{
		name: "comfy-history-timeout",
		slot: "status",
		on: ["comfy"],
		permanent: false,
		directives: () => ["history=timeout"],
	},
	{
		name: "comfy-view-502",
		slot: "view",
		on: ["comfy"],
		permanent: false,
		directives: (r) => [`view=502*${r.int(1, 2)}`],
	},
	// No answer on /view: given up after the call timeout (not the download budget), then fetched again.
	{ name: "comfy-view-timeout", slot: "view", on: ["comfy"], permanent: false, directives: () => ["view=timeout"] },
	// A video without a content-length goes to R2 as a multipart upload.
	{ name: "comfy-chunked", slot: "chunked", on: ["comfy"], permanent: false, directives: () => ["chunked"] },
	{ name: "comfy-queued-long", slot: "slow", on: ["comfy"], permanent: false, directives: () => ["slow=5"] },
	{ name: "comfy-forgot-once", slot: "vanish", on: ["comfy"], permanent: false, directives: () => ["vanish*1"] },
	// Permanent.
	{
		name: "comfy-refused",
		slot: "run",
		on: ["comfy"],
		permanent: true,
		// A 400 with node_errors (an input ComfyUI will not take); the job names its backend, so no failover.
		directives: () => ["reject"],
		code: () => "backend_error",
	},
	{
		name: "comfy-execution-error",
		slot: "fail",
		on: ["comfy"],
		permanent: true,
		directives: () => ["error"],
		code: () => "inference_failed",
	},
	{
		name: "comfy-no-output",
		slot: "fail",
		on: ["comfy"],
		permanent: true,
		directives: () => ["noutput"],
		code: () => "output_missing",
	},
	{
		name: "comfy-lost-for-good",
		slot: "vanish",
		on: ["comfy"],
		permanent: true,
		directives: () => ["vanish"],
		code: () => "lost",
	},
	// vast.ai (test/emulators/vastai/server.ts), whose instances serve the same ComfyUI: every job without a fault
	// shares one instance of `chaos-vast`, whose offers can be rented once, so jobs arriving together must not race
	// into several rentals. The others go to a backend with the fault in its emulator scope.
	{
		name: "vast-instance-lost",
		slot: "backend",
		on: ["vast"],
		permanent: false,
		variant: "lost",
		directives: () => [],
	},
	{
		name: "vast-key-refused",
		slot: "backend",
		on: ["vast"],
		permanent: true,
		variant: "key",
		directives: () => [],
		code: () => "backend_misconfigured",
	},
	{
		name: "vast-no-offer",
		slot: "backend",
		on: ["vast"],
		permanent: true,
		variant: "none",
		directives: () => [],
		code: () => "no_capacity",
	},
];

export interface JobPlan {
	index: number;
	backend: BackendKind;
	/** The backend fault's variant (`chaos-<backend>-<variant>`), when it has one. */
	variant?: string;
	faults: string[];
	directives: string[];
	/** The error code the job must end with; undefined: it must succeed. */
	expectCode?: string;
	/** The video's size; its bytes are `fakeVideo(prompt, videoSize)`. */
	videoSize: number;
	prompt: string;
}

/**
 * A job's faults: the first jobs take one kind each, in catalogue order, so every kind is exercised; the others
 * none (about a third), or one or two transient ones, plus a permanent one for about one in six.
 */
export function planJob(rng: Rng, index: number, tag: string): JobPlan {
	const forced = FAULTS[index];
	const backend: BackendKind = rng.pick(forced ? forced.on : BACKENDS);
	const usable = FAULTS.filter((f) => f.on.includes(backend));
	const chosen: FaultKind[] = forced ? [forced] : [];
	const take = (pool: FaultKind[]) => {
		const free = pool.filter((f) => !chosen.some((c) => c.slot === f.slot));
		if (free.length > 0) chosen.push(rng.pick(free));
	};
	if (!forced && rng.chance(0.16)) take(usable.filter((f) => f.permanent));
	const transient = forced || rng.chance(0.3) ? 0 : rng.int(1, 2);
	for (let i = 0; i < transient; i++) take(usable.filter((f) => !f.permanent));
	const directives = chosen.flatMap((f) => f.directives(rng));
	const permanent = chosen.find((f) => f.permanent);
	const videoSize = rng.int(2_000, 256_000);
	const prompt = `chaos ${tag} job ${index} ${[...directives, `size=${videoSize}`].map((d) => `#emu:${d}`).join(" ")}`;
	return {
		index,
		backend,
		variant: chosen.find((f) => f.variant)?.variant,
		faults: chosen.map((f) => f.name),
		directives,
		expectCode: permanent?.code?.(backend),
		videoSize,
		prompt,
	};
}
