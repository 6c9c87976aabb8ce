import { configOf } from "../config";
import { type BackendRow, getBackend } from "../db/backends";
import type { JobRecord } from "../jobs/record";
import { openJson } from "../lib/secret-box";
import { jobVideoKey } from "../storage";
import { ComfyuiBackend } from "./comfyui";
import { storedConfig } from "./config";
import { PodBackend } from "./pod";
import { RunpodBackend } from "./runpod";
import type { GpuBackend, JobContext } from "./types";
import { VastaiBackend } from "./vastai";

export function parseModels(row: BackendRow): string[] {
	try {
		const parsed: unknown = JSON.parse(row.models);
		return Array.isArray(parsed) ? parsed.filter((m): m is string => typeof m === "string") : [];
	} catch {
		return [];
	}
}

/** Builds the adapter of a stored backend, its config read back through its schema and its secrets decrypted. */
export async function buildBackend(env: Env, row: BackendRow): Promise<GpuBackend> {
	const stored = storedConfig(row, await openJson(env.BACKEND_SECRETS_KEY, row.secrets));
	const deps = { bucket: env.BUCKET, maxVideoBytes: configOf(env).maxVideoBytes };
	switch (stored.kind) {
		case "pod":
			return new PodBackend(stored.config);
		case "runpod":
			return new RunpodBackend(stored.config, { ...deps, signingSecret: env.SIGNING_SECRET });
		case "comfyui":
			return new ComfyuiBackend(stored.config, deps);
		case "vastai":
			return new VastaiBackend(env, row.name, deps);
	}
}

/** Loads a backend by name and builds its adapter; null when it no longer exists. */
export async function loadBackend(env: Env, name: string): Promise<{ row: BackendRow; backend: GpuBackend } | null> {
	const row = await getBackend(env.DB, name);
	if (!row) return null;
	return { row, backend: await buildBackend(env, row) };
}

/** The adapter context of a job: its spec, and where its current submission's video goes. */
export function jobContext(job: Pick<JobRecord, "spec" | "output_key" | "attempts">): JobContext {
	const { spec } = job;
	return {
		id: spec.id,
		origin: spec.origin,
		inputs: spec.inputs,
		videoKey: jobVideoKey(job),
		submission: job.attempts + 1,
		limits: {
			...(spec.start_by ? { startBy: spec.start_by } : {}),
			...(spec.max_runtime_s !== undefined ? { maxRuntimeS: spec.max_runtime_s } : {}),
		},
	};
}
