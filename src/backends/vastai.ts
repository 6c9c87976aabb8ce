import { ComfyuiBackend, type ComfyuiDeps } from "./comfyui";
import { type BackendResult, failure } from "./failure";
import type { GpuBackend, GpuJobInput, HealthReport, JobContext, JobRun, PollStatus } from "./types";
import { VastaiClient } from "./vastai-api";
import { loadVastSettings, offerFilter } from "./vastai-fleet";

/** How soon a job retries while its instance boots (vast.ai boots take minutes: no need to ask every second). */
export const BOOT_RETRY_MS = 15_000;

/**
 * The `vastai` kind: ComfyUI on a vast.ai instance the backend rents and destroys itself. The instance's life is
 * kept by the backend's BackendDO (src/backends/vastai-fleet.ts); jobs run through the `comfyui` path on it. The
 * remote id is `{instance}/{prompt}`, so a job whose instance was replaced shows as lost and is resubmitted.
 */
export class VastaiBackend implements GpuBackend {
	readonly kind = "vastai" as const;
	readonly #env: Env;
	readonly #name: string;
	readonly #deps: ComfyuiDeps;

	constructor(env: Env, name: string, deps: ComfyuiDeps) {
		this.#env = env;
		this.#name = name;
		this.#deps = deps;
	}

	forJob(job: JobContext): JobRun {
		return {
			submit: (input) => this.#submit(job, input),
			poll: (remoteId) => this.#poll(job, remoteId),
			cancel: (remoteId) => this.#cancel(job, remoteId),
		};
	}

	#stub() {
		return this.#env.BACKENDS.getByName(this.#name);
	}

	/** The ComfyUI of the current instance when it is `instanceId` (or any, when not given) and ready. */
	async #comfy(job: JobContext, instanceId?: number): Promise<JobRun | null> {
		const state = await this.#stub().vastInstance(true);
		if (state?.status !== "ready" || !state.url) return null;
		if (instanceId !== undefined && state.instance_id !== instanceId) return null;
		return new ComfyuiBackend({ url: state.url, token: state.password }, this.#deps).forJob(job);
	}

	/** Runs on the ready instance; its hourly price becomes the job's price per second (the cost accrues per job). */
	async #submit(
		job: JobContext,
		input: GpuJobInput,
	): Promise<BackendResult<{ remoteId: string; pricePerSecondUsd?: number }>> {
		const ensured = await this.#stub().vastEnsure(this.#name);
		if (!ensured.ready) {
			// A refused key or no capacity within the wait: the job is told now (failover, or fails with the code).
			if (ensured.reason === "misconfigured")
				return { ...failure("misconfigured", ensured.message), code: "backend_misconfigured" };
			if (ensured.reason === "no_capacity") return { ...failure("no_capacity", ensured.message), code: "no_capacity" };
			return failure("booting", ensured.message, Math.max(BOOT_RETRY_MS, ensured.retryAfterMs ?? 0));
		}
		const instance = ensured.state.instance_id;
		const comfy = await this.#comfy(job, instance);
		if (!comfy) return failure("booting", "Instance not ready.", BOOT_RETRY_MS);
		const r = await comfy.submit(input);
		if (!r.ok && r.reason === "unreachable") {
			// ComfyUI silent: when vast.ai says the instance died, the job waits for the replacement instead.
			const check = await this.#stub().vastCheck(this.#name, instance);
			if (check.gone) return failure("booting", check.message, BOOT_RETRY_MS);
		}
		if (!r.ok) return r;
		return {
			ok: true,
			remoteId: `${ensured.state.instance_id}/${r.remoteId}`,
			pricePerSecondUsd: ensured.state.dph > 0 ? ensured.state.dph / 3600 : undefined,
		};
	}

	static #split(remoteId: string): { instance: number; prompt: string } {
		const [instance, prompt] = remoteId.split("/");
		return { instance: Number(instance), prompt: prompt ?? "" };
	}

	async #poll(job: JobContext, remoteId: string): Promise<BackendResult<PollStatus>> {
		const { instance, prompt } = VastaiBackend.#split(remoteId);
		const comfy = await this.#comfy(job, instance);
		// The instance is gone (destroyed, died): the job is lost with it and goes back to the queue.
		if (!comfy) return VastaiBackend.#lost(`The vast.ai instance ${instance} is gone; the job is submitted again.`);
		const polled = await comfy.poll(prompt);
		if (!polled.ok && polled.reason === "unreachable") {
			const check = await this.#stub().vastCheck(this.#name, instance);
			if (check.gone) return VastaiBackend.#lost(`${check.message} The job is submitted again.`);
		}
		return polled;
	}

	/** The job never produced output on an instance that died: it is resubmitted, and its history says why. */
	static #lost(message: string): BackendResult<PollStatus> {
		return { ok: true, state: "lost", error: { code: "instance_lost", message } };
	}

	async #cancel(job: JobContext, remoteId: string): Promise<BackendResult<Record<never, never>>> {
		const { instance, prompt } = VastaiBackend.#split(remoteId);
		const comfy = await this.#comfy(job, instance);
		return comfy ? comfy.cancel(prompt) : { ok: true };
	}

	/** Whether the API key works, how many offers fit, and the current instance (its ComfyUI, when ready). */
	async health(): Promise<HealthReport> {
		const started = Date.now();
		const settings = await loadVastSettings(this.#env, this.#name);
		if (!settings) return { reachable: false, latency_ms: 0, details: { error: "Not a vastai backend." } };
		const offers = await new VastaiClient(settings.apiKey, settings.baseUrl).searchOffers(offerFilter(settings));
		const latency_ms = Date.now() - started;
		const state = await this.#stub().vastInstance(false);
		const { waiting, deleting } = await this.#stub().vastStatus();
		const details: Record<string, unknown> = {
			instance: state ? { id: state.instance_id, status: state.status, dph_total: state.dph } : null,
			// Why jobs wait, and a deletion under way: what an operator testing the backend wants to see first.
			waiting: waiting ? { reason: waiting.reason, message: waiting.message } : null,
			...(deleting ? { deleting: { attempts: deleting.attempts, remaining: deleting.remaining } } : {}),
		};
		if (!offers.ok) return { reachable: false, latency_ms, details: { ...details, error: offers.message } };
		details.offers_available = offers.value.length;
		details.cheapest_dph = offers.value[0]?.dph_total ?? null;
		if (state?.status === "ready" && state.url) {
			const comfy = new ComfyuiBackend({ url: state.url, token: state.password }, this.#deps);
			details.comfyui = (await comfy.health()).details;
		}
		return { reachable: true, latency_ms, details };
	}
}
