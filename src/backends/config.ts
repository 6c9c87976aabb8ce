import { z } from "@hono/zod-openapi";
import type { BackendRow } from "../db/backends";
import type { BackendKind } from "../schemas/backends";

const HttpUrl = z.url({ protocol: /^https?$/ }).max(2048);
/** A secret: a string sets it, `null` clears it, absent keeps what is stored (secrets are write-only). */
const Secret = z.string().min(1).max(4096).nullable().optional();

export const PodConfigSchema = z
	.object({
		url: HttpUrl,
		token: Secret,
		timeout_ms: z.number().int().min(100).max(120_000).optional().openapi({ description: "Per-call timeout." }),
	})
	.strict();

export const ComfyuiConfigSchema = z
	.object({
		url: HttpUrl,
		token: Secret.openapi({ description: "Sent as `Authorization: Bearer` (vast.ai: the WEB_PASSWORD)." }),
		timeout_ms: z.number().int().min(100).max(120_000).optional().openapi({ description: "Per-call timeout." }),
	})
	.strict();

export const RunpodConfigSchema = z
	.object({
		endpoint_id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
		api_key: Secret,
		base_url: HttpUrl.optional().openapi({ description: "Default https://api.runpod.ai/v2." }),
		timeout_ms: z.number().int().min(100).max(120_000).optional().openapi({ description: "Per-call timeout." }),
		execution_timeout_s: z.number().int().min(5).max(604_800).optional().openapi({
			description: "RunPod `policy.executionTimeout` for each job (default 1800 s).",
		}),
		ttl_s: z.number().int().min(10).max(604_800).optional().openapi({
			description: "RunPod `policy.ttl`: the job's whole life at RunPod (default 7200 s).",
		}),
		webhook: z.boolean().optional().openapi({
			description: "Ask RunPod to call back on completion (default true); polling remains the fallback.",
		}),
	})
	.strict();

/**
 * vast.ai: the instance the backend rents (offers and instances of
 * https://docs.vast.ai/api-reference/introduction); unknown extra fields are kept as they are.
 */
export const VastaiConfigSchema = z.looseObject({
	api_key: Secret,
	base_url: HttpUrl.optional().openapi({ description: "Default https://console.vast.ai." }),
	min_gpu_ram_gb: z.number().min(8).max(1024).optional().openapi({ description: "Default 24." }),
	max_dph_usd: z.number().min(0).max(100).optional().openapi({ description: "Price cap per hour (default 0.6)." }),
	min_reliability: z.number().min(0).max(1).optional().openapi({ description: "Default 0.98." }),
	gpu_names: z.array(z.string().min(1).max(64)).max(16).optional(),
	image: z.string().min(1).max(256).optional().openapi({ description: "Default vastai/comfyui." }),
	template_hash_id: z.string().min(1).max(128).optional(),
	disk_gb: z.number().int().min(10).max(2048).optional(),
	onstart: z.string().max(4096).optional().openapi({ description: "Default: fetch the served models." }),
	idle_destroy_s: z.number().int().min(1).max(86_400).optional().openapi({
		description: "Destroy the instance after this long without a job (default 600).",
	}),
	boot_timeout_s: z.number().int().min(60).max(7200).optional().openapi({ description: "Default 1200." }),
	capacity_wait_s: z.number().int().min(0).max(86_400).optional().openapi({
		description:
			"How long jobs wait for an offer matching the filters before they fail over or fail with `no_capacity` (default 120).",
	}),
});

const common = {
	enabled: z.boolean().optional(),
	priority: z.number().int().min(-1000).max(1000).optional(),
	models: z.array(z.string().min(1).max(64)).max(32).optional().openapi({
		description: "Models this backend serves; empty or absent: every model.",
	}),
	max_concurrency: z.number().int().min(1).max(1000).optional().openapi({
		description: "Jobs sent to this backend at once (default 10); the rest wait in a queue fair across accounts.",
	}),
	price_per_second_usd: z.number().min(0).max(100).optional(),
};

export const PutBackendBodySchema = z
	.discriminatedUnion("kind", [
		z.object({ kind: z.literal("pod"), ...common, config: PodConfigSchema }).strict(),
		z.object({ kind: z.literal("comfyui"), ...common, config: ComfyuiConfigSchema }).strict(),
		z.object({ kind: z.literal("runpod"), ...common, config: RunpodConfigSchema }).strict(),
		z.object({ kind: z.literal("vastai"), ...common, config: VastaiConfigSchema }).strict(),
	])
	.openapi("PutBackendRequest");
export type PutBackendBody = z.infer<typeof PutBackendBodySchema>;

export type PodConfig = z.infer<typeof PodConfigSchema>;
export type ComfyuiConfig = z.infer<typeof ComfyuiConfigSchema>;
export type RunpodConfig = z.infer<typeof RunpodConfigSchema>;
export type VastaiConfig = z.infer<typeof VastaiConfigSchema>;

/** A stored backend's settings, its secrets included, by kind. */
export type StoredConfig =
	| { kind: "pod"; config: PodConfig }
	| { kind: "comfyui"; config: ComfyuiConfig }
	| { kind: "runpod"; config: RunpodConfig }
	| { kind: "vastai"; config: VastaiConfig };

/**
 * Reads a stored backend's settings back through the schema that validated them on write, with its (decrypted)
 * secrets. A row the schema refuses now is a broken store, not a backend failure: it throws.
 */
export function storedConfig(row: Pick<BackendRow, "kind" | "config">, secrets: Record<string, string>): StoredConfig {
	const raw: unknown = { ...(JSON.parse(row.config) as object), ...secrets };
	switch (row.kind) {
		case "pod":
			return { kind: row.kind, config: PodConfigSchema.parse(raw) };
		case "comfyui":
			return { kind: row.kind, config: ComfyuiConfigSchema.parse(raw) };
		case "runpod":
			return { kind: row.kind, config: RunpodConfigSchema.parse(raw) };
		case "vastai":
			return { kind: row.kind, config: VastaiConfigSchema.parse(raw) };
	}
}

/** Which config fields are secrets, per kind. */
export function secretFields(kind: BackendKind): readonly string[] {
	switch (kind) {
		case "pod":
		case "comfyui":
			return ["token"];
		case "runpod":
		case "vastai":
			return ["api_key"];
	}
}

/** Secrets without which a backend of this kind cannot work. */
export function requiredSecrets(kind: BackendKind): readonly string[] {
	switch (kind) {
		case "pod":
		case "comfyui":
			return [];
		case "runpod":
		case "vastai":
			return ["api_key"];
	}
}

/**
 * Splits a submitted config into what is stored in clear and the secret changes:
 * `set` (new values), `clear` (fields sent as null); absent secret fields keep their stored value.
 */
export function splitConfig(
	kind: BackendKind,
	config: Record<string, unknown>,
): { plain: Record<string, unknown>; set: Record<string, string>; clear: string[] } {
	const fields = secretFields(kind);
	const plain: Record<string, unknown> = {};
	const set: Record<string, string> = {};
	const clear: string[] = [];
	for (const [k, v] of Object.entries(config)) {
		if (!fields.includes(k)) plain[k] = v;
		else if (typeof v === "string") set[k] = v;
		else if (v === null) clear.push(k);
	}
	return { plain, set, clear };
}
