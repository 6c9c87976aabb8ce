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
import { fetchPlan, missingFiles, modelFilesFor, onstartScript } from "./vastai-models";

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
	/** The onstart script for a new instance (the operator's own, or one that fetches `files`; signed URLs fresh). */
	onstart: () => Promise<string>;
	/** The model files jobs need: an instance is ready only once ComfyUI lists each of them. */
	files: { folder: string; name: string }[];
	idleDestroyS: number;
	bootTimeoutS: number;
	/** How long jobs wait for an offer matching the filters before they fail over or fail with `no_capacity`. */
	capacityWaitS: number;
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

/** Why no instance is ready for a job, as the job's failure reason (src/backends/failure.ts) will say it. */
export type EnsureReason = "booting" | "misconfigured" | "no_capacity";

export type Ensure =
	| { ready: true; state: VastState }
	| {
			ready: false;
			state: VastState | null;
			reason: EnsureReason;
			/** vast.ai's own words kept; never the API key or a signed URL. */
			message: string;
			/** vast.ai's Retry-After, when it asked for one. */
			retryAfterMs?: number;
			/** Since when no offer has matched the filters (null: one did, or none was searched). */
			noOfferSince?: number | null;
	  };

/** A deletion vast.ai refused is retried after 30 s, doubling up to 10 min. */
export function deletionBackoffMs(attempts: number): number {
	return Math.min(10 * 60_000, 30_000 * 2 ** Math.max(0, attempts - 1));
}

/** Why a vastai backend's jobs wait: the last not-ready answer (stored under `vast_wait`). */
export interface VastWaitNote {
	reason: string;
	message: string;
	/** Since when jobs have waited for this reason. */
	since: string;
	/** Since when no offer has matched the filters (epoch ms), which bounds the wait for capacity. */
	no_offer_since: number | null;
	/** When it was last written (epoch ms): an old empty search says nothing of the market since. */
	checked_at?: number;
}

/**
 * When the wait for capacity began, as a new step should count it: a wait not looked at for longer than the
 * capacity wait itself (no job asked meanwhile) starts over, so a job arriving after a quiet spell gets its own.
 */
export function noOfferSince(note: VastWaitNote | null, s: VastSettings, now: number): number | null {
	if (!note?.no_offer_since) return null;
	const last = note.checked_at ?? note.no_offer_since;
	return now - last > Math.max(60, s.capacityWaitS) * 1000 ? null : note.no_offer_since;
}

/** An instance vast.ai has not confirmed destroyed (id 0: the list of instances could not be read). */
export interface VastRemaining {
	id: number;
	message: string;
}

/** A deletion under way (stored under `vast_deleting`). */
export interface VastDeleting {
	since: string;
	attempts: number;
	next_at: string;
	remaining: VastRemaining[];
}

export interface VastStatus {
	instance: { id: number; status: string; dph_total: number; created_at: string } | null;
	waiting: VastWaitNote | null;
	deleting: VastDeleting | null;
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
	const files = await modelFilesFor(env, models);
	const bootTimeoutS = c.boot_timeout_s ?? 1200;
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
		// Signed URLs last the whole boot allowance, and a margin for a slow last file.
		onstart: async () => c.onstart ?? onstartScript(await fetchPlan(env, files, bootTimeoutS + 600)),
		files: files.map((f) => ({ folder: f.folder, name: f.name })),
		idleDestroyS: c.idle_destroy_s ?? 600,
		bootTimeoutS,
		capacityWaitS: c.capacity_wait_s ?? 120,
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

/** The filters in words, for a job told that no offer matches them. */
export function describeFilters(s: VastSettings): string {
	const gpus = s.gpuNames?.length ? `, GPU in ${s.gpuNames.join(" | ")}` : "";
	return `VRAM >= ${s.minGpuRamGb} GB, price <= $${s.maxDph}/h, reliability >= ${s.minReliability}${gpus}`;
}

/** A refused key (401, 403) refuses every job: the backend is misconfigured, not busy. */
const refusedKey = (status: number) => status === 401 || status === 403;

type Failed = { ok: false; status: number; message: string; retryAfterMs?: number };

/** A failed vast.ai call as the answer to jobs: a refused key at once, anything else retried (Retry-After kept). */
function notReady(state: VastState | null, what: string, r: Failed, noOfferSince?: number | null): Ensure {
	if (refusedKey(r.status)) {
		return {
			ready: false,
			state,
			reason: "misconfigured",
			message: `vast.ai refused the backend's API key (${r.message}).`,
		};
	}
	return {
		ready: false,
		state,
		reason: "booting",
		message: `${what}: ${r.message}${/[.!?]$/.test(r.message) ? "" : "."}`,
		...(r.retryAfterMs === undefined ? {} : { retryAfterMs: r.retryAfterMs }),
		...(noOfferSince === undefined ? {} : { noOfferSince }),
	};
}

/** At most this many offers are tried in one step when the cheapest are taken by someone else meanwhile. */
const CREATE_TRIES = 3;

/**
 * Rents the cheapest fitting offer. An offer rented by someone else between search and create (vast.ai answers
 * 4xx) gives way to the next one. `noOfferSince` is carried so that a wait for capacity is bounded.
 */
async function rent(
	client: VastaiClient,
	s: VastSettings,
	backend: string,
	now: number,
	noOfferSince: number | null,
): Promise<Ensure> {
	const offers = await client.searchOffers(offerFilter(s));
	if (!offers.ok) return notReady(null, "Offer search failed", offers, noOfferSince);
	if (offers.value.length === 0) {
		const since = noOfferSince ?? now;
		const filters = describeFilters(s);
		if (now - since >= s.capacityWaitS * 1000) {
			return {
				ready: false,
				state: null,
				reason: "no_capacity",
				message: `No vast.ai offer matched the filters (${filters}) for ${s.capacityWaitS} s.`,
				noOfferSince: since,
			};
		}
		return {
			ready: false,
			state: null,
			reason: "booting",
			message: `Waiting for a vast.ai offer matching the filters (${filters}).`,
			noOfferSince: since,
		};
	}
	let last: Failed | null = null;
	const onstart = await s.onstart();
	for (const offer of offers.value.slice(0, CREATE_TRIES)) {
		const password = base64url(crypto.getRandomValues(new Uint8Array(24)));
		const body: Record<string, unknown> = {
			image: s.image,
			label: labelFor(backend),
			disk: s.diskGb,
			runtype: "args",
			onstart,
			target_state: "running",
			cancel_unavail: true,
			env: { WEB_PASSWORD: password, "-p 8188:8188": "1" },
		};
		if (s.templateHashId) body.template_hash_id = s.templateHashId;
		const created = await client.createInstance(offer.id, body);
		if (created.ok) {
			const fresh: VastState = {
				instance_id: created.value,
				status: "loading",
				password,
				url: null,
				dph: offer.dph_total ?? 0,
				created_at: now,
				last_used_at: now,
			};
			return {
				ready: false,
				state: fresh,
				reason: "booting",
				message: "A vast.ai instance is starting.",
				noOfferSince: null,
			};
		}
		last = created;
		// Only an offer taken meanwhile is worth another try; a refused key, a rate limit or an outage is not.
		if (created.status < 400 || created.status >= 500 || created.status === 429 || refusedKey(created.status)) break;
	}
	return notReady(null, "Instance creation failed", last ?? { ok: false, status: 0, message: "no offer tried" }, null);
}

/** What vast.ai says of an instance now: alive (any status from which it may still run), dead or gone, or unknown. */
export type InstanceHealth =
	| { kind: "alive"; status: string | null }
	| { kind: "dead"; status: string }
	| { kind: "unknown"; message: string };

export async function instanceHealth(s: VastSettings, instanceId: number): Promise<InstanceHealth> {
	const shown = await new VastaiClient(s.apiKey, s.baseUrl).showInstance(instanceId);
	if (!shown.ok) return { kind: "unknown", message: shown.message };
	const status = shown.value?.actual_status ?? null;
	if (!shown.value) return { kind: "dead", status: "gone" };
	if (status && DEAD_STATUSES.includes(status)) return { kind: "dead", status };
	return { kind: "alive", status };
}

/**
 * One step towards a ready instance: rent one when there is none, follow it while it loads, and give it up when it
 * dies or does not boot in time. Never waits: the job retries until `ready`. The caller runs one step at a time
 * per backend and stores the state it returns, so a rented instance is never forgotten.
 */
export async function ensureInstance(
	s: VastSettings,
	backend: string,
	state: VastState | null,
	now: number,
	noOfferSince: number | null = null,
): Promise<Ensure> {
	const client = new VastaiClient(s.apiKey, s.baseUrl);
	if (state?.status === "ready") return { ready: true, state };
	if (!state) return rent(client, s, backend, now, noOfferSince);
	const shown = await client.showInstance(state.instance_id);
	if (!shown.ok) return notReady(state, "Instance check failed", shown);
	const inst = shown.value;
	const timedOut = now > state.created_at + s.bootTimeoutS * 1000;
	if (!inst || DEAD_STATUSES.includes(inst.actual_status ?? "") || timedOut) {
		// A destroy refused here leaves the instance labelled and unknown to the state: the orphan sweep retries it.
		if (inst) await client.destroyInstance(state.instance_id);
		const why = timedOut ? `did not boot within ${s.bootTimeoutS} s` : `is ${inst?.actual_status ?? "gone"}`;
		return {
			ready: false,
			state: null,
			reason: "booting",
			message: `The vast.ai instance ${state.instance_id} ${why}; renting another.`,
		};
	}
	const url = inst.actual_status === "running" ? comfyUrl(inst) : null;
	if (url && (await comfyAnswers(url, state.password))) {
		// ComfyUI answers long before the weights are down: a job sent now would fail validation for good.
		const missing = await missingFiles(url, state.password, s.files);
		if (missing?.length === 0) return { ready: true, state: { ...state, status: "ready", url, last_used_at: now } };
		const have = missing ? s.files.length - missing.length : "?";
		return {
			ready: false,
			state: { ...state, url },
			reason: "booting",
			message: `The vast.ai instance ${state.instance_id} is fetching its model files (${have} of ${s.files.length} present).`,
		};
	}
	return {
		ready: false,
		state: { ...state, url },
		reason: "booting",
		message: `The vast.ai instance ${state.instance_id} is still starting (${inst.actual_status ?? "provisioning"}).`,
	};
}

/**
 * The reconciliation step (BackendDO alarm): destroys the instance when idle past `idleDestroyS` (no job holds a
 * slot), and every instance labelled for this backend that the state does not know. Returns the new state, the ids
 * destroyed, and those vast.ai would not destroy (with its answer), which the caller retries.
 */
export async function reconcileFleet(
	s: VastSettings,
	backend: string,
	state: VastState | null,
	busy: boolean,
	now: number,
): Promise<{ state: VastState | null; destroyed: number[]; remaining: { id: number; message: string }[] }> {
	const client = new VastaiClient(s.apiKey, s.baseUrl);
	const destroyed: number[] = [];
	const remaining: { id: number; message: string }[] = [];
	let next = state;
	if (next && !busy && now - next.last_used_at > s.idleDestroyS * 1000) {
		const r = await client.destroyInstance(next.instance_id);
		if (r.ok) {
			destroyed.push(next.instance_id);
			next = null;
		} else remaining.push({ id: next.instance_id, message: r.message });
	}
	const listed = await client.listInstances();
	if (!listed.ok) {
		remaining.push({ id: 0, message: `listing instances failed: ${listed.message}` });
		return { state: next, destroyed, remaining };
	}
	for (const inst of listed.value) {
		if (inst.label !== labelFor(backend) || inst.id === next?.instance_id) continue;
		const r = await client.destroyInstance(inst.id);
		if (r.ok) destroyed.push(inst.id);
		else remaining.push({ id: inst.id, message: r.message });
	}
	return { state: next, destroyed, remaining };
}
