import { z } from "@hono/zod-openapi";
import type { BackendKind } from "./types";

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

export const ComfyuiConfigSchema = z.object({ url: HttpUrl, token: Secret }).strict();

export const RunpodConfigSchema = z
	.object({
		endpoint_id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
		api_key: Secret,
		base_url: HttpUrl.optional(),
	})
	.strict();

// vast.ai settings are still being designed (another issue); accept extra fields and store them.
export const VastaiConfigSchema = z.looseObject({ api_key: Secret });

const common = {
	enabled: z.boolean().optional(),
	priority: z.number().int().min(-1000).max(1000).optional(),
	models: z.array(z.string().min(1).max(64)).max(32).optional().openapi({
		description: "Models this backend serves; empty or absent: every model.",
	}),
	max_concurrency: z.number().int().min(1).max(1000).optional(),
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
