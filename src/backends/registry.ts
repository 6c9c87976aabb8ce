import { configOf } from "../config";
import { type BackendRow, getBackend } from "../db/backends";
import type { JobRecord, JobSpec } from "../jobs/record";
import { openJson } from "../lib/secret-box";
import { jobVideoKey } from "../storage";
import { ComfyuiBackend, type ComfyuiJobContext } from "./comfyui";
import { PodBackend } from "./pod";
import { RunpodBackend } from "./runpod";
import type { BackendKind, GpuBackend } from "./types";
import { VastaiBackend } from "./vastai";
import { runpodWebhookUrl } from "./webhook-token";

/** Kinds with a working job path today; the others are stored and listed, and refused for jobs. */
export const SUPPORTED_KINDS: readonly BackendKind[] = ["pod", "runpod", "comfyui", "vastai"];

/** The job an adapter is built for (absent for admin calls such as `test`). */
export interface JobContext {
	id: string;
	account_id: string;
	/** Origin the backend uses to reach the Worker (webhooks, signed URLs). */
	origin: string;
	/** The job's inputs in R2 (the `comfyui` kind uploads them itself). */
	inputs: JobSpec["inputs"];
	/** Where the current submission's video goes (kinds that store it themselves). */
	videoKey: string;
	/** The number a submit made now gives its submission: retries of a submit that failed keep it. */
	submission: number;
}

const optNum = (v: unknown): number | undefined => (typeof v === "number" ? v : undefined);

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

export type BuildResult =
	| { ok: true; backend: GpuBackend }
	| { ok: false; reason: "kind_unsupported"; kind: BackendKind };

/** What the ComfyUI-based kinds need of a job: its inputs in R2 and where the video goes. */
function comfyContext(env: Env, job?: JobContext): ComfyuiJobContext | undefined {
	if (!job) return undefined;
	return {
		bucket: env.BUCKET,
		jobId: job.id,
		inputs: job.inputs,
		videoKey: job.videoKey,
		submission: job.submission,
		maxVideoBytes: configOf(env).maxVideoBytes,
	};
}

/** Builds the adapter for a stored backend, decrypting its secrets; `job` ties it to one job (webhook, output). */
export async function buildBackend(env: Env, row: BackendRow, job?: JobContext): Promise<BuildResult> {
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
			return {
				ok: true,
				backend: new RunpodBackend(
					{
						endpoint_id: String(config.endpoint_id),
						api_key: secrets.api_key ?? "",
						base_url: typeof config.base_url === "string" ? config.base_url : undefined,
						timeout_ms: optNum(config.timeout_ms),
						execution_timeout_s: optNum(config.execution_timeout_s),
						ttl_s: optNum(config.ttl_s),
					},
					job
						? {
								webhookUrl:
									config.webhook === false ? undefined : await runpodWebhookUrl(env.SIGNING_SECRET, job.origin, job.id),
								bucket: env.BUCKET,
								videoKey: job.videoKey,
								maxVideoBytes: configOf(env).maxVideoBytes,
							}
						: {},
				),
			};
		case "comfyui":
			return {
				ok: true,
				backend: new ComfyuiBackend(
					{ url: String(config.url), token: secrets.token, timeout_ms: optNum(config.timeout_ms) },
					comfyContext(env, job),
				),
			};
		case "vastai":
			return { ok: true, backend: new VastaiBackend(env, row.name, comfyContext(env, job)) };
	}
}

/** Loads a backend by name and builds its adapter; null when it no longer exists. */
export async function loadBackend(
	env: Env,
	name: string,
	job?: JobContext,
): Promise<{ row: BackendRow; build: BuildResult } | null> {
	const row = await getBackend(env.DB, name);
	if (!row) return null;
	return { row, build: await buildBackend(env, row, job) };
}

/** The adapter context of a job: its spec, and where its current submission's video goes. */
export function jobContext(job: Pick<JobRecord, "spec" | "output_key" | "attempts">): JobContext {
	const { spec } = job;
	return {
		id: spec.id,
		account_id: spec.account_id,
		origin: spec.origin,
		inputs: spec.inputs,
		videoKey: jobVideoKey(job),
		submission: job.attempts + 1,
	};
}
