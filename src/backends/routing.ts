/**
 * Routing across GPU backends: which backend a job goes to (at creation and on failover), and whether it may be
 * sent now (the backend's BackendDO: slots, fair queue, circuit breaker). The JobDO calls these around `submit`.
 */
import { type BackendRow, getBackend, listEnabledBackends } from "../db/backends";
import type { Estimate, RunSample } from "../jobs/eta";
import type { JobSpec } from "../jobs/record";
import { PRIORITY_RANK } from "../jobs/run-limits";
import { createLogger } from "../lib/logger";
import { manifestAt } from "../models/catalog";
import type { ModelManifest } from "../models/manifest";
import type { Availability } from "../models/view";
import { COOLDOWN_MS } from "./breaker";
import { type BackendFailure, type BackendResult, failure, policyOf } from "./failure";
import { isObject } from "./http";
import { parseModels } from "./registry";
import type { AcquireResult, BackendSnapshot } from "./types";

/** A job waiting for a slot re-asks this often at the latest (the BackendDO wakes it as soon as one frees). */
export const ADMISSION_RECHECK_MS = 10_000;
/** Consecutive refused submissions after which a not-yet-running job moves to the next backend. */
export const FAILOVER_AFTER_REFUSALS = 2;

const log = createLogger({ component: "routing" });

function stubOf(env: Env, name: string) {
	return env.BACKENDS.getByName(name);
}

async function snapshotOf(env: Env, name: string): Promise<BackendSnapshot | null> {
	try {
		return await stubOf(env, name).snapshot();
	} catch (err) {
		log.warn("backend_snapshot_failed", { backend: name, error: err instanceof Error ? err.message : String(err) });
		return null;
	}
}

/** Whether the breaker lets a job through now (an open breaker past its cooldown admits a probe). */
function healthy(s: BackendSnapshot | null, now: number): boolean {
	if (s?.breaker.state !== "open") return true;
	return now >= (s.breaker.opened_at ?? 0) + COOLDOWN_MS;
}

/** What routing needs to know of a model. */
export type ModelNeeds = Pick<ModelManifest, "id" | "kind"> &
	Partial<Pick<ModelManifest, "gpu" | "files" | "workflow">>;

const GIB = 1024 ** 3;

/** The largest `vram_total` (bytes) among ComfyUI's `/system_stats` devices as a health check recorded them. */
function largestVram(details: unknown): number | null {
	const gpus = isObject(details) && Array.isArray(details.gpus) ? details.gpus : [];
	const sizes = gpus.map((g) => (isObject(g) && typeof g.vram_total === "number" ? g.vram_total : 0));
	const max = Math.max(0, ...sizes);
	return max > 0 ? max : null;
}

/**
 * The GPU memory, in GB, a backend is known to offer: what its ComfyUI reported at the last health check (a
 * `comfyui` backend, or a vast.ai instance that is up), else the least a vast.ai backend rents when its
 * `min_gpu_ram_gb` is set. Null when unknown (a RunPod endpoint or pod says nothing of its GPU): no constraint then.
 */
export function gpuMemoryGb(row: BackendRow): number | null {
	const details = healthDetails(row);
	const reported = largestVram(row.kind === "vastai" ? details.comfyui : details);
	if (reported !== null) return reported / GIB;
	if (row.kind === "vastai") {
		try {
			const config = JSON.parse(row.config) as { min_gpu_ram_gb?: unknown };
			// Only when set: offers searched by the default floor may still be larger, so it says nothing sure.
			return typeof config.min_gpu_ram_gb === "number" ? config.min_gpu_ram_gb : null;
		} catch {
			return null;
		}
	}
	return null;
}

/** The `details` of the backend's last health check ({} when it has none). */
function healthDetails(row: BackendRow): Record<string, unknown> {
	try {
		const health: unknown = row.last_health ? JSON.parse(row.last_health) : null;
		return isObject(health) && isObject(health.details) ? health.details : {};
	} catch {
		return {};
	}
}

const strings = (v: unknown): string[] | null =>
	Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : null;

/** ComfyUI reads `unet` and `diffusion_models`, `clip` and `text_encoders`, as one folder each. */
const FOLDER_ALIASES: Record<string, string> = {
	unet: "diffusion_models",
	diffusion_models: "unet",
	clip: "text_encoders",
	text_encoders: "clip",
};

/**
 * What the GPU worker advertised at its last health check (`inventory`: the built-in models it runs, the model
 * files under its MODELS_ROOT, ComfyUI's node classes) lacks of what the model needs, in words; null when it has
 * it all. A backend that advertises nothing (RunPod Serverless, a bare ComfyUI, an older worker) is taken at its
 * word.
 */
function inventoryLacks(row: BackendRow, model: ModelNeeds): string | null {
	const stock = healthDetails(row).inventory;
	if (!isObject(stock)) return null;
	if (model.kind === "builtin") {
		const builtin = strings(stock.builtin);
		return builtin === null || builtin.includes(model.id) ? null : `it does not enable ${model.id}`;
	}
	const lacking: string[] = [];
	const files = strings(stock.files);
	if (files !== null) {
		const have = new Set(files);
		const missing = (model.files ?? []).filter((f) => {
			const alias = FOLDER_ALIASES[f.folder];
			return !have.has(`${f.folder}/${f.name}`) && !(alias && have.has(`${alias}/${f.name}`));
		});
		if (missing.length > 0) lacking.push(`files ${missing.map((f) => `${f.folder}/${f.name}`).join(", ")}`);
	}
	const classes = strings(stock.node_classes);
	if (classes !== null && model.workflow) {
		const have = new Set(classes);
		const missing = [...new Set(Object.values(model.workflow.graph).map((n) => n.class_type))].filter(
			(c) => !have.has(c),
		);
		if (missing.length > 0) lacking.push(`node classes ${missing.join(", ")}`);
	}
	return lacking.length > 0 ? `it lacks ${lacking.join("; ")}` : null;
}

/**
 * Why a backend may not run a model, or null when it may: ComfyUI-based kinds run ComfyUI workflows only (not the
 * GPU worker's own `preview`), an operator's model list, when the backend has one, must name it, a GPU worker that
 * advertises its model files and node classes must have the model's, and a GPU known to be smaller than the model
 * needs (`gpu.memory_gb` of its manifest) cannot hold it.
 */
export function whyNotServed(row: BackendRow, model: ModelNeeds): string | null {
	if ((row.kind === "comfyui" || row.kind === "vastai") && model.kind !== "comfyui") {
		return `a ${row.kind} backend runs ComfyUI workflows only`;
	}
	const models = parseModels(row);
	if (models.length > 0 && !models.includes(model.id)) return "its models list does not name it";
	const lacks = inventoryLacks(row, model);
	if (lacks) return lacks;
	const memory = model.gpu ? gpuMemoryGb(row) : null;
	// Nominal sizes run a little under the label (an "80 GB" card reports 79.2 GiB): 5% of slack.
	if (memory !== null && model.gpu && memory < model.gpu.memory_gb * 0.95) {
		return `its GPU has ${Math.round(memory * 10) / 10} GB, the model needs ${model.gpu.memory_gb}`;
	}
	return null;
}

export function servesModel(row: BackendRow, model: ModelNeeds): boolean {
	return whyNotServed(row, model) === null;
}

/** The last health check found it unreachable (a backend never checked counts as reachable). */
function lastCheckFailed(row: BackendRow): boolean {
	if (!row.last_health) return false;
	try {
		return (JSON.parse(row.last_health) as { reachable?: unknown }).reachable === false;
	} catch {
		return false;
	}
}

function canStartNow(row: BackendRow, s: BackendSnapshot | null): boolean {
	return !s || (s.waiting === 0 && s.in_flight < row.max_concurrency);
}

/**
 * Enabled backends that serve `model`, best first: healthy before open-circuit ones, then by
 * priority (the operator's preference), then those able to start the job now, then the cheapest, then the least
 * loaded. `exclude` drops backends a job already tried.
 */
export async function rankBackends(
	env: Env,
	model: ModelNeeds,
	exclude: readonly string[] = [],
): Promise<BackendRow[]> {
	return rankRows(env, await listEnabledBackends(env.DB), model, exclude);
}

/** `rankBackends` over rows already read. */
async function rankRows(
	env: Env,
	enabled: readonly BackendRow[],
	model: ModelNeeds,
	exclude: readonly string[] = [],
): Promise<BackendRow[]> {
	const rows = enabled.filter((r) => servesModel(r, model) && !exclude.includes(r.name));
	const snaps = await Promise.all(rows.map((r) => snapshotOf(env, r.name)));
	const now = Date.now();
	const scored = rows.map((row, i) => {
		const s = snaps[i] ?? null;
		const load = s ? (s.in_flight + s.waiting) / Math.max(1, row.max_concurrency) : 0;
		return { row, healthy: healthy(s, now), start: canStartNow(row, s), load };
	});
	scored.sort(
		(a, b) =>
			Number(b.healthy) - Number(a.healthy) ||
			b.row.priority - a.row.priority ||
			Number(b.start) - Number(a.start) ||
			a.row.price_per_second_usd - b.row.price_per_second_usd ||
			a.load - b.load ||
			a.row.name.localeCompare(b.row.name),
	);
	return scored.map((s) => s.row);
}

/** A refusal carries where the job stands: its place in the queue (`full`) or when a probe may go (`circuit_open`). */
export type Admission = (
	| { ok: true }
	| { ok: false; reason: "full"; delayMs: number; detail: string; position: number; ahead: number }
	| {
			ok: false;
			reason: "circuit_open";
			delayMs: number;
			detail: string;
			retryAtMs: number;
			/** The backend refuses every job (its last failure said so): the job meets that failure now. */
			refusal?: BackendFailure;
	  }
) & { estimate?: Estimate };

/** Asks the job's backend for a slot; a BackendDO failure lets the job through (admission must not wedge jobs). */
export async function admitJob(env: Env, spec: JobSpec, row: BackendRow): Promise<Admission> {
	let result: AcquireResult;
	try {
		result = await stubOf(env, row.name).acquire({
			jobId: spec.id,
			accountId: spec.account_id,
			backend: row.name,
			maxConcurrency: row.max_concurrency,
			priority: PRIORITY_RANK[spec.priority ?? "normal"],
			...(spec.work ? { work: { model: spec.model, ...spec.work } } : {}),
		});
	} catch (err) {
		log.warn("admission_failed", { backend: row.name, error: err instanceof Error ? err.message : String(err) });
		return { ok: true };
	}
	const estimate = result.estimate ? { estimate: result.estimate } : {};
	if (result.granted) return { ok: true, ...estimate };
	if (result.reason === "full") {
		return {
			...estimate,
			ok: false,
			reason: "full",
			delayMs: ADMISSION_RECHECK_MS,
			detail: `waiting for a slot on ${row.name} (position ${result.position})`,
			position: result.position,
			ahead: result.ahead,
		};
	}
	const delayMs = Math.max(1000, result.retry_at - Date.now());
	const refusal = result.refusal && {
		...failure("misconfigured", result.refusal.message),
		...(result.refusal.code ? { code: result.refusal.code } : {}),
	};
	return {
		...estimate,
		ok: false,
		reason: "circuit_open",
		delayMs,
		detail: `${row.name} is failing (circuit open)`,
		retryAtMs: Date.now() + delayMs,
		...(refusal ? { refusal } : {}),
	};
}

/** Feeds a submission's outcome to the backend's circuit breaker (best effort). */
export async function reportOutcome(env: Env, name: string, result: BackendResult<unknown>): Promise<void> {
	const verdict = result.ok ? "success" : policyOf(result.reason).breaker;
	if (verdict === "ignore") return;
	// A refusal of every job is kept with the failure, so the jobs waiting on the open breaker meet it at once.
	const refusal =
		!result.ok && result.reason === "misconfigured"
			? { message: result.message, ...(result.code ? { code: result.code } : {}) }
			: undefined;
	try {
		await stubOf(env, name).report(verdict === "success", refusal);
	} catch (err) {
		log.warn("breaker_report_failed", { backend: name, error: err instanceof Error ? err.message : String(err) });
	}
}

/** Tells the backend how long a completed run took, for later estimates (best effort). */
export async function recordRun(env: Env, name: string, run: RunSample): Promise<void> {
	try {
		await stubOf(env, name).recordRun(run);
	} catch (err) {
		log.warn("record_run_failed", { backend: name, error: err instanceof Error ? err.message : String(err) });
	}
}

/** Gives up the job's slot or queue place on `name` (it moved away). */
export async function releaseSlot(env: Env, name: string, jobId: string): Promise<void> {
	try {
		await stubOf(env, name).release(jobId);
	} catch (err) {
		log.warn("release_failed", { backend: name, error: err instanceof Error ? err.message : String(err) });
	}
}

/**
 * Whether a failed submission may move the job to another backend: only when the job never ran and the backend
 * certainly did not take it (`policyOf(…).failover`), so a job can never run, let alone succeed, twice; a timeout
 * is ambiguous (the run may exist) and is retried on the same backend. A job that named its backend stays there.
 */
export function mayFailover(
	spec: JobSpec,
	remoteId: string | null,
	failure: BackendFailure,
	refusals: number,
): boolean {
	if (remoteId !== null || spec.backend.pinned) return false;
	const failover = policyOf(failure.reason).failover;
	return failover === "now" || (failover === "after_refusals" && refusals >= FAILOVER_AFTER_REFUSALS);
}

/** The next backend for a job leaving its current one, or null when every eligible one was tried. */
export async function failoverTarget(env: Env, spec: JobSpec): Promise<BackendRow | null> {
	const tried = [...(spec.tried_backends ?? []), spec.backend.name];
	// The version the job runs: a model retired or replaced since still fails over by what this job needs.
	const model = await manifestAt(env, spec.model, spec.model_version);
	if (!model) return null;
	const ranked = await rankBackends(env, model, tried);
	return ranked[0] ?? null;
}

/** The job's spec routed to `row`, remembering the backend it leaves. */
export function movedSpec(spec: JobSpec, row: BackendRow): JobSpec {
	return {
		...spec,
		backend: { ...spec.backend, name: row.name, kind: row.kind, price_per_second_usd: row.price_per_second_usd },
		tried_backends: [...(spec.tried_backends ?? []), spec.backend.name],
	};
}

export type PickResult =
	| { ok: true; row: BackendRow }
	| { ok: false; reason: "not_found" | "disabled" | "model_unsupported"; name: string }
	| { ok: false; reason: "none_available" };

/**
 * `pickBackend` while the model is still being resolved: the backend rows are read from D1 meanwhile, so both take
 * one round trip. Null when the model resolves to none (the caller reports the unknown model).
 */
export async function pickBackendBeside(
	env: Env,
	model: Promise<ModelNeeds | null>,
	name?: string,
): Promise<PickResult | null> {
	if (name !== undefined) {
		const [row, needs] = await Promise.all([getBackend(env.DB, name), model]);
		if (!needs) return null;
		return judgeNamed(row, name, needs);
	}
	const [rows, needs] = await Promise.all([listEnabledBackends(env.DB), model]);
	if (!needs) return null;
	const best = (await rankRows(env, rows, needs))[0];
	return best ? { ok: true, row: best } : { ok: false, reason: "none_available" };
}

/** Whether the backend a job names may take it: it must exist, be enabled and serve the model. */
function judgeNamed(row: BackendRow | null, name: string, model: ModelNeeds): PickResult {
	if (!row) return { ok: false, reason: "not_found", name };
	if (!row.enabled) return { ok: false, reason: "disabled", name };
	if (!servesModel(row, model)) return { ok: false, reason: "model_unsupported", name };
	return { ok: true, row };
}

/**
 * Picks the backend for a new job: the named one when given (it must exist, be enabled and serve the model), else
 * the best-ranked eligible one (`rankBackends`).
 */
export async function pickBackend(env: Env, model: ModelNeeds, name?: string): Promise<PickResult> {
	if (name !== undefined) return judgeNamed(await getBackend(env.DB, name), name, model);
	const row = (await rankBackends(env, model))[0];
	return row ? { ok: true, row } : { ok: false, reason: "none_available" };
}

/**
 * For each model: whether an enabled backend that serves it is healthy now (its circuit not
 * open, its last health check not failed), and the kinds of those that are; otherwise why not.
 */
export async function modelAvailability(env: Env, models: readonly ModelNeeds[]): Promise<Map<string, Availability>> {
	const rows = await listEnabledBackends(env.DB);
	const snaps = await Promise.all(rows.map((r) => snapshotOf(env, r.name)));
	const now = Date.now();
	const healthyRows = new Set(rows.filter((r, i) => healthy(snaps[i] ?? null, now) && !lastCheckFailed(r)));
	const out = new Map<string, Availability>();
	for (const model of models) {
		const serving = rows.filter((r) => servesModel(r, model));
		const up = serving.filter((r) => healthyRows.has(r));
		if (up.length > 0) {
			out.set(model.id, { available: true, served: true, kinds: [...new Set(up.map((r) => r.kind))].sort() });
		} else if (serving.length > 0) {
			out.set(model.id, {
				available: false,
				served: true,
				kinds: [],
				reason: "every backend that serves it is failing (circuit open) or failed its last health check",
			});
		} else {
			out.set(model.id, { available: false, served: false, kinds: [], reason: "no enabled backend serves it" });
		}
	}
	return out;
}
