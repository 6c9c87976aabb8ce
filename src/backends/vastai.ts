import { ComfyuiBackend, type ComfyuiJobContext } from "./comfyui";
import type { BackendResult, GpuBackend, GpuJobInput, HealthReport, PollStatus } from "./types";
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
	readonly #job?: ComfyuiJobContext;

	constructor(env: Env, name: string, job?: ComfyuiJobContext) {
		this.#env = env;
		this.#name = name;
		this.#job = job;
	}

	#stub() {
		return this.#env.BACKENDS.getByName(this.#name);
	}

	/** The ComfyUI of the current instance when it is `instanceId` (or any, when not given) and ready. */
	async #comfy(instanceId?: number): Promise<ComfyuiBackend | null> {
		const state = await this.#stub().vastInstance(true);
		if (state?.status !== "ready" || !state.url) return null;
		if (instanceId !== undefined && state.instance_id !== instanceId) return null;
		return new ComfyuiBackend({ url: state.url, token: state.password }, this.#job);
	}

	/** Runs on the ready instance; its hourly price becomes the job's price per second (the cost accrues per job). */
	async submit(input: GpuJobInput): Promise<BackendResult<{ remoteId: string; pricePerSecondUsd?: number }>> {
		const ensured = await this.#stub().vastEnsure(this.#name);
		if (!ensured.ready) {
			return { ok: false, kind: "transient", pending: true, retryAfterMs: BOOT_RETRY_MS, message: ensured.message };
		}
		const comfy = await this.#comfy(ensured.state.instance_id);
		if (!comfy) {
			return {
				ok: false,
				kind: "transient",
				pending: true,
				retryAfterMs: BOOT_RETRY_MS,
				message: "Instance not ready.",
			};
		}
		const r = await comfy.submit(input);
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

	async poll(remoteId: string): Promise<BackendResult<PollStatus>> {
		const { instance, prompt } = VastaiBackend.#split(remoteId);
		const comfy = await this.#comfy(instance);
		// The instance is gone (destroyed, died): the job is lost with it and goes back to the queue.
		if (!comfy) return { ok: true, state: "lost" };
		return comfy.poll(prompt);
	}

	async cancel(remoteId: string): Promise<BackendResult<Record<never, never>>> {
		const { instance, prompt } = VastaiBackend.#split(remoteId);
		const comfy = await this.#comfy(instance);
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
		const details: Record<string, unknown> = {
			instance: state ? { id: state.instance_id, status: state.status, dph_total: state.dph } : null,
		};
		if (!offers.ok) return { reachable: false, latency_ms, details: { ...details, error: offers.message } };
		details.offers_available = offers.value.length;
		details.cheapest_dph = offers.value[0]?.dph_total ?? null;
		if (state?.status === "ready" && state.url) {
			details.comfyui = (await new ComfyuiBackend({ url: state.url, token: state.password }).health()).details;
		}
		return { reachable: true, latency_ms, details };
	}
}
