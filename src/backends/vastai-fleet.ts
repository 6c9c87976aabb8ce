/**
 * The life of a `vastai` backend's instance, as functions over a small state the BackendDO stores: rent an offer
 * that fits, wait until ComfyUI answers on it, destroy it when idle or dead, and destroy orphans (instances with
 * this backend's label that the state does not know), so no instance is left billing.
 */
import { getBackend } from "../db/backends";
import { base64url } from "../lib/ids";
import { openJson } from "../lib/secret-box";
import { storedConfig } from "./config";
import { comfyUrl, DEAD_STATUSES, VASTAI_BASE_URL, VastaiClient } from "./vastai-api";
import { templateFor } from "./workflows";

export interface VastSettings {
	apiKey: string;
	baseUrl: string;
	minGpuRamGb: number;
	maxDph: number;
	minReliability: number;
	gpuNames?: string[];
	image: string;
	templateHashId?: string;
	diskGb: number;
	onstart: string;
	idleDestroyS: number;
	bootTimeoutS: number;
}

export interface VastState {
	instance_id: number;
	status: "loading" | "ready";
	/** ComfyUI's Bearer token on the instance (WEB_PASSWORD, set at creation). */
	password: string;
	url: string | null;
	dph: number;
	created_at: number;
	last_used_at: number;
}

export type Ensure = { ready: true; state: VastState } | { ready: false; state: VastState | null; message: string };

/** The onstart script: fetch the models the backend serves (gpu-worker/scripts/download_models.sh), then run. */
export function defaultOnstart(models: string[]): string {
	const wanted = models.filter((m) => templateFor(m)).join(" ") || "wan2.2-i2v wan2.2-s2v";
	return `bash -c 'cd /workspace && (test -d reelgate || git clone --depth 1 "$REELGATE_REPO" reelgate) && reelgate/gpu-worker/scripts/download_models.sh --root /workspace/ComfyUI/models ${wanted}' &`;
}

/** The label every instance of this backend carries: what orphan reconciliation recognises as ours. */
export const labelFor = (backend: string) => `reelgate:${backend}`;

/** Reads a vastai backend's settings (the API key decrypted); null when it is gone or not vastai. */
export async function loadVastSettings(env: Env, name: string): Promise<VastSettings | null> {
	const row = await getBackend(env.DB, name);
	if (row?.kind !== "vastai") return null;
	const stored = storedConfig(row, await openJson(env.BACKEND_SECRETS_KEY, row.secrets));
	if (stored.kind !== "vastai") return null;
	const c = stored.config;
	const models = JSON.parse(row.models) as string[];
	return {
		apiKey: c.api_key ?? "",
		baseUrl: c.base_url ?? VASTAI_BASE_URL,
		minGpuRamGb: c.min_gpu_ram_gb ?? 24,
		maxDph: c.max_dph_usd ?? 0.6,
		minReliability: c.min_reliability ?? 0.98,
		gpuNames: c.gpu_names,
		image: c.image ?? "vastai/comfyui",
		templateHashId: c.template_hash_id,
		diskGb: c.disk_gb ?? 80,
		onstart: c.onstart ?? defaultOnstart(models),
		idleDestroyS: c.idle_destroy_s ?? 600,
		bootTimeoutS: c.boot_timeout_s ?? 1200,
	};
}

/** The offer filter: enough VRAM, a price cap, reliable, verified, rentable now. */
export function offerFilter(s: VastSettings): Record<string, unknown> {
	const filter: Record<string, unknown> = {
		gpu_ram: { gte: s.minGpuRamGb * 1000 },
		num_gpus: { gte: 1 },
		reliability: { gte: s.minReliability },
		dph_total: { lte: s.maxDph },
		verified: { eq: true },
		rentable: { eq: true },
		type: "ondemand",
		limit: 5,
	};
	if (s.gpuNames?.length) filter.gpu_name = { in: s.gpuNames };
	return filter;
}

async function comfyAnswers(url: string, password: string): Promise<boolean> {
	try {
		const res = await fetch(`${url}/system_stats`, {
			headers: { authorization: `Bearer ${password}` },
			signal: AbortSignal.timeout(5000),
		});
		await res.body?.cancel();
		return res.ok;
	} catch {
		return false;
	}
}

/**
 * One step towards a ready instance: rent one when there is none, follow it while it loads, and give it up when it
 * dies or does not boot in time. Never waits: the job retries until `ready`.
 */
export async function ensureInstance(
	s: VastSettings,
	backend: string,
	state: VastState | null,
	now: number,
): Promise<Ensure> {
	const client = new VastaiClient(s.apiKey, s.baseUrl);
	if (state?.status === "ready") return { ready: true, state };
	if (!state) {
		const offers = await client.searchOffers(offerFilter(s));
		if (!offers.ok) return { ready: false, state: null, message: `Offer search failed: ${offers.message}.` };
		const offer = offers.value[0];
		if (!offer) return { ready: false, state: null, message: "No vast.ai offer fits (VRAM, price cap, reliability)." };
		const password = base64url(crypto.getRandomValues(new Uint8Array(24)));
		const body: Record<string, unknown> = {
			image: s.image,
			label: labelFor(backend),
			disk: s.diskGb,
			runtype: "args",
			onstart: s.onstart,
			target_state: "running",
			cancel_unavail: true,
			env: { WEB_PASSWORD: password, "-p 8188:8188": "1" },
		};
		if (s.templateHashId) body.template_hash_id = s.templateHashId;
		const created = await client.createInstance(offer.id, body);
		if (!created.ok) return { ready: false, state: null, message: `Instance creation failed: ${created.message}.` };
		const fresh: VastState = {
			instance_id: created.value,
			status: "loading",
			password,
			url: null,
			dph: offer.dph_total ?? 0,
			created_at: now,
			last_used_at: now,
		};
		return { ready: false, state: fresh, message: "A vast.ai instance is starting." };
	}
	const shown = await client.showInstance(state.instance_id);
	if (!shown.ok) return { ready: false, state, message: `Instance check failed: ${shown.message}.` };
	const inst = shown.value;
	const timedOut = now > state.created_at + s.bootTimeoutS * 1000;
	if (!inst || DEAD_STATUSES.includes(inst.actual_status ?? "") || timedOut) {
		if (inst) await client.destroyInstance(state.instance_id);
		return { ready: false, state: null, message: "The vast.ai instance died or did not boot; renting another." };
	}
	const url = inst.actual_status === "running" ? comfyUrl(inst) : null;
	if (url && (await comfyAnswers(url, state.password))) {
		return { ready: true, state: { ...state, status: "ready", url, last_used_at: now } };
	}
	return { ready: false, state: { ...state, url }, message: "The vast.ai instance is still starting." };
}

/**
 * The reconciliation step (BackendDO alarm): destroys the instance when idle past `idleDestroyS` (no job holds a
 * slot), and every instance labelled for this backend that the state does not know. Returns the new state and the
 * ids destroyed.
 */
export async function reconcileFleet(
	s: VastSettings,
	backend: string,
	state: VastState | null,
	busy: boolean,
	now: number,
): Promise<{ state: VastState | null; destroyed: number[] }> {
	const client = new VastaiClient(s.apiKey, s.baseUrl);
	const destroyed: number[] = [];
	let next = state;
	if (next && !busy && now - next.last_used_at > s.idleDestroyS * 1000) {
		const r = await client.destroyInstance(next.instance_id);
		if (r.ok) {
			destroyed.push(next.instance_id);
			next = null;
		}
	}
	const listed = await client.listInstances();
	if (listed.ok) {
		for (const inst of listed.value) {
			if (inst.label !== labelFor(backend) || inst.id === next?.instance_id) continue;
			if ((await client.destroyInstance(inst.id)).ok) destroyed.push(inst.id);
		}
	}
	return { state: next, destroyed };
}
