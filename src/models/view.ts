/**
 * The public face of a model (`GET /v1/models`): what a client needs to build a form and check it before sending:
 * its input files, its parameters as JSON Schema (types, ranges, defaults, enumerations), the limits the derived
 * values impose, and whether a backend serves it now. The workflow, files and custom nodes stay an operator's
 * concern (`GET /v1/admin/models/{id}`).
 */
import { z } from "@hono/zod-openapi";
import { AUDIO_TYPES, IMAGE_TYPES } from "../schemas/uploads";
import { MEDIA_KINDS, type MediaKind, type ModelManifest, type ParameterSpec } from "./manifest";

/** Why a model cannot run now, and on which kinds of backend it can. */
export interface Availability {
	available: boolean;
	/** An enabled backend serves it, healthy or not: a job for it is accepted (and waits while none is healthy). */
	served: boolean;
	kinds: string[];
	reason?: string;
}

const CONTENT_TYPES: Record<MediaKind, readonly string[]> = {
	image: IMAGE_TYPES,
	audio: AUDIO_TYPES,
	mask: ["image/png"],
	video: ["video/mp4"],
};

type JsonSchema = Record<string, unknown>;

/** One parameter as a JSON Schema (2020-12) property; `x-` keys carry what JSON Schema cannot say. */
export function parameterJsonSchema(p: ParameterSpec): JsonSchema {
	const base: JsonSchema = { description: p.description };
	if (p.title) base.title = p.title;
	if (p.advanced) base["x-advanced"] = true;
	switch (p.type) {
		case "string":
			return {
				...base,
				type: "string",
				maxLength: p.max_length,
				...(p.min_length ? { minLength: p.min_length } : {}),
				...(p.default !== undefined ? { default: p.default } : {}),
				...(p.multiline ? { "x-multiline": true } : {}),
			};
		case "integer":
		case "number":
			return {
				...base,
				type: p.type,
				minimum: p.minimum,
				maximum: p.maximum,
				...(p.type === "integer" && p.multiple_of ? { multipleOf: p.multiple_of } : {}),
				...(p.default !== undefined ? { default: p.default } : {}),
				...(p.default_from ? { "x-default-from": p.default_from } : {}),
				...(p.type === "integer" && p.random_default ? { "x-random-default": true } : {}),
			};
		case "boolean":
			return { ...base, type: "boolean", ...(p.default !== undefined ? { default: p.default } : {}) };
		case "enum":
			return { ...base, enum: p.values, ...(p.default !== undefined ? { default: p.default } : {}) };
		case "resolution":
			return {
				...base,
				type: "string",
				pattern: "^[0-9]+x[0-9]+$",
				default: p.default,
				"x-resolution": {
					min_side: p.min_side,
					max_side: p.max_side,
					multiple_of: p.multiple_of,
					...(p.max_pixels ? { max_pixels: p.max_pixels } : {}),
				},
			};
	}
}

/** The model's parameters as one JSON Schema object (the files and LoRAs of `input` are described beside it). */
export function parametersJsonSchema(m: ModelManifest): JsonSchema {
	const properties: Record<string, JsonSchema> = {};
	for (const [name, p] of Object.entries(m.parameters)) properties[name] = parameterJsonSchema(p);
	return { type: "object", properties, additionalProperties: false };
}

/** The rules the schema alone cannot state (derived values' ranges, cross-field rules), in words. */
export function constraintsOf(m: ModelManifest): string[] {
	const out: string[] = [];
	for (const [name, d] of Object.entries(m.derived)) {
		if (d.min === undefined && d.max === undefined) continue;
		const range =
			d.min !== undefined && d.max !== undefined
				? `from ${d.min} to ${d.max}`
				: d.max !== undefined
					? `at most ${d.max}`
					: `at least ${d.min}`;
		const how =
			d.rule === "frames"
				? `${d.duration} × ${d.fps}${d.step > 1 ? `, snapped to ${d.step}k+1` : ""}`
				: d.rule === "scale"
					? `${d.of} × ${d.factor}`
					: `${d.of} in chunks of ${d.size}`;
		out.push(`${name} (${how}) ${range}`);
	}
	for (const r of m.rules) out.push(r.message);
	return out;
}

/** The limits a client meets: longest video, resolution bounds, LoRAs. */
export function limitsOf(m: ModelManifest) {
	const duration = m.parameters.duration_s;
	const fps = m.parameters.fps;
	const frames = Object.values(m.derived).find((d) => d.rule === "frames");
	const resolution = Object.values(m.parameters).find((p) => p.type === "resolution");
	let maxDuration = duration && (duration.type === "number" || duration.type === "integer") ? duration.maximum : null;
	const defaultFps = fps && fps.type === "integer" ? fps.default : undefined;
	if (frames?.max !== undefined && defaultFps) {
		const byFrames = Math.floor((frames.max / defaultFps) * 100) / 100;
		maxDuration = maxDuration === null ? byFrames : Math.min(maxDuration, byFrames);
	}
	return {
		max_duration_s: maxDuration,
		max_frames: frames?.max ?? null,
		resolution:
			resolution?.type === "resolution"
				? {
						default: resolution.default,
						min_side: resolution.min_side,
						max_side: resolution.max_side,
						multiple_of: resolution.multiple_of,
						max_pixels: resolution.max_pixels ?? null,
					}
				: null,
		loras: m.loras ? { max: m.loras.max, max_bytes: m.loras.max_bytes, strength: m.loras.strength } : null,
	};
}

export const ModelSchema = z
	.object({
		id: z.string().openapi({ example: "wan2.2-i2v" }),
		version: z.string().openapi({ description: "Jobs record the version they ran (`model_version`)." }),
		title: z.string(),
		description: z.string(),
		tags: z.array(z.string()),
		kind: z.enum(["comfyui", "builtin"]),
		inputs: z
			.partialRecord(
				z.enum(MEDIA_KINDS),
				z.object({ required: z.boolean(), description: z.string(), content_types: z.array(z.string()) }),
			)
			.openapi({ description: "The files `input` takes (`image`, `audio`, …): an upload id or an https URL each." }),
		parameters: z.record(z.string(), z.unknown()).openapi({
			description:
				"The other fields of `input`, as a JSON Schema object (types, ranges, defaults, enumerations). " +
				"`x-resolution` bounds a WIDTHxHEIGHT string, `x-default-from` takes the default from an input " +
				"file (the audio's length), `x-random-default` draws one, `x-advanced` marks fields a form may tuck away.",
		}),
		constraints: z
			.array(z.string())
			.openapi({ description: "Rules across fields (derived values' ranges, comparisons), in words." }),
		limits: z.object({
			max_duration_s: z.number().nullable().openapi({ description: "At the default fps." }),
			max_frames: z.number().int().nullable(),
			resolution: z
				.object({
					default: z.string(),
					min_side: z.number().int(),
					max_side: z.number().int(),
					multiple_of: z.number().int(),
					max_pixels: z.number().int().nullable(),
				})
				.nullable(),
			loras: z
				.object({
					max: z.number().int(),
					max_bytes: z.number().int(),
					strength: z.object({ minimum: z.number(), maximum: z.number(), default: z.number() }),
				})
				.nullable()
				.openapi({ description: "`input.loras`: [{url, strength?, sha256?}], when the model takes LoRAs." }),
		}),
		gpu: z.object({ memory_gb: z.number() }).nullable(),
		throughput: z
			.object({
				seconds_per_frame: z.number(),
				width: z.number().int(),
				height: z.number().int(),
				gpu: z.string(),
				source: z.enum(["measured", "estimated"]),
				note: z.string().optional(),
			})
			.nullable(),
		available: z.boolean().openapi({ description: "A healthy, enabled backend serves the model now." }),
		accepting_jobs: z.boolean().openapi({
			description:
				"An enabled backend serves the model, healthy or not: a job for it is accepted, and waits (`queue.reason`) " +
				"while none is healthy. When false, creating a job answers 422 `model_unavailable`.",
		}),
		backend_kinds: z
			.array(z.string())
			.openapi({ description: "The kinds of the healthy backends that serve it (`runpod`, `pod`, …)." }),
		unavailable_reason: z.string().optional(),
		links: z.object({ self: z.string() }),
	})
	.openapi("Model");
export type ModelView = z.infer<typeof ModelSchema>;

export function toModelView(m: ModelManifest, availability: Availability, origin: string): ModelView {
	const inputs: ModelView["inputs"] = {};
	for (const kind of MEDIA_KINDS) {
		const spec = m.inputs[kind];
		if (spec)
			inputs[kind] = {
				required: spec.required,
				description: spec.description,
				content_types: [...CONTENT_TYPES[kind]],
			};
	}
	const view: ModelView = {
		id: m.id,
		version: m.version,
		title: m.title,
		description: m.description,
		tags: m.tags,
		kind: m.kind,
		inputs,
		parameters: parametersJsonSchema(m),
		constraints: constraintsOf(m),
		limits: limitsOf(m),
		gpu: m.gpu ?? null,
		throughput: m.throughput ?? null,
		available: availability.available,
		accepting_jobs: availability.served,
		backend_kinds: availability.kinds,
		links: { self: `${origin}/v1/models/${encodeURIComponent(m.id)}` },
	};
	if (!availability.available && availability.reason) view.unavailable_reason = availability.reason;
	return view;
}
