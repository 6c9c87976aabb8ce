import { type BackendRow, getBackend, listEnabledBackends } from "../db/backends";
import { openJson } from "../lib/secret-box";
import { PodBackend } from "./pod";
import type { BackendKind, GpuBackend } from "./types";

/** Kinds with a working job path today; the others are stored and listed, and refused for jobs. */
export const SUPPORTED_KINDS: readonly BackendKind[] = ["pod"];

export function isSupportedKind(kind: BackendKind): boolean {
	return SUPPORTED_KINDS.includes(kind);
}

export function parseModels(row: BackendRow): string[] {
	try {
		const parsed: unknown = JSON.parse(row.models);
		return Array.isArray(parsed) ? parsed.filter((m): m is string => typeof m === "string") : [];
	} catch {
		return [];
	}
}

/** An empty model list means the backend serves every model. */
export function servesModel(row: BackendRow, model: string): boolean {
	const models = parseModels(row);
	return models.length === 0 || models.includes(model);
}

export type BuildResult =
	| { ok: true; backend: GpuBackend }
	| { ok: false; reason: "kind_unsupported"; kind: BackendKind };

/** Builds the adapter for a stored backend, decrypting its secrets. */
export async function buildBackend(env: Env, row: BackendRow): Promise<BuildResult> {
	const config = JSON.parse(row.config) as Record<string, unknown>;
	const secrets = await openJson(env.BACKEND_SECRETS_KEY, row.secrets);
	switch (row.kind) {
		case "pod":
			return {
				ok: true,
				backend: new PodBackend({
					url: String(config.url),
					token: secrets.token,
					timeout_ms: typeof config.timeout_ms === "number" ? config.timeout_ms : undefined,
				}),
			};
		case "runpod":
		case "comfyui":
		case "vastai":
			return { ok: false, reason: "kind_unsupported", kind: row.kind };
	}
}

/** Loads a backend by name and builds its adapter; null when it no longer exists. */
export async function loadBackend(env: Env, name: string): Promise<{ row: BackendRow; build: BuildResult } | null> {
	const row = await getBackend(env.DB, name);
	if (!row) return null;
	return { row, build: await buildBackend(env, row) };
}

export type PickResult =
	| { ok: true; row: BackendRow }
	| { ok: false; reason: "not_found" | "disabled" | "model_unsupported" | "kind_unsupported"; name: string }
	| { ok: false; reason: "none_available" };

/**
 * Picks the backend for a job: the named one when given (it must exist, be enabled, serve the model and be of a
 * supported kind), else the highest-priority enabled backend of a supported kind that serves the model.
 */
export async function pickBackend(db: D1Database, model: string, name?: string): Promise<PickResult> {
	if (name !== undefined) {
		const row = await getBackend(db, name);
		if (!row) return { ok: false, reason: "not_found", name };
		if (!row.enabled) return { ok: false, reason: "disabled", name };
		if (!servesModel(row, model)) return { ok: false, reason: "model_unsupported", name };
		if (!isSupportedKind(row.kind)) return { ok: false, reason: "kind_unsupported", name };
		return { ok: true, row };
	}
	const rows = await listEnabledBackends(db);
	const row = rows.find((r) => servesModel(r, model) && isSupportedKind(r.kind));
	return row ? { ok: true, row } : { ok: false, reason: "none_available" };
}
