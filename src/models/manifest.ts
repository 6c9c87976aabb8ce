/**
 * The model manifest: one model as data (docs/models.md). A manifest names the model, declares its input files and
 * its parameter schema (types, ranges, defaults, derived values, cross-field rules), and for a ComfyUI model holds
 * the API-format workflow with the node inputs each value is written to, the weight files and custom nodes it
 * needs, its GPU memory and its throughput. The same JSON serves the API (`/v1/models`), the job input builder,
 * the `comfyui` adapter, the GPU worker and its download script. `models/manifest.schema.json` is this schema as
 * JSON Schema, for editors (`npm run models -- schema` writes it; a test keeps it current).
 *
 * Imports nothing of the Worker, so Node scripts can load it as it is.
 */
import { z } from "@hono/zod-openapi";

/** The manifest format this code reads; a manifest says which one it was written for. */
export const MANIFEST_FORMAT = 1;

export const MODEL_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const VERSION = /^[0-9A-Za-z][0-9A-Za-z._+-]{0,31}$/;
/** ComfyUI node ids: "12", or "12:3" inside an expanded subgraph. */
const NODE_ID = /^[A-Za-z0-9_:.-]{1,64}$/;
const NAME = /^[a-z][a-z0-9_]{0,63}$/;
const SHA256 = /^[0-9a-f]{64}$/;

/** Where a value goes: one input of one node of the workflow; `part` picks a side of a resolution. */
export const NodeInputSchema = z
	.object({
		node: z.string().regex(NODE_ID),
		input: z.string().min(1).max(128),
		part: z.enum(["width", "height"]).optional(),
	})
	.strict();
export type NodeInput = z.infer<typeof NodeInputSchema>;

const Binds = z.array(NodeInputSchema).max(32).default([]);

export const MEDIA_KINDS = ["image", "audio", "video", "mask"] as const;
export type MediaKind = (typeof MEDIA_KINDS)[number];

const InputFileSchema = z
	.object({
		required: z.boolean(),
		description: z.string().min(1).max(500),
		bind: Binds.describe("The LoadImage/LoadAudio inputs that receive the file's name once it is on the GPU host."),
	})
	.strict();
export type InputFileSpec = z.infer<typeof InputFileSchema>;

/** A default measured from an input file (the audio's length) where the client gives none. */
const DefaultFromSchema = z.object({ input: z.enum(MEDIA_KINDS), measure: z.literal("duration_s") }).strict();

const common = {
	title: z.string().min(1).max(80).optional(),
	description: z.string().min(1).max(500),
	/** A hint for forms: tucked away under "advanced". */
	advanced: z.boolean().optional(),
	bind: Binds,
};

const StringParamSchema = z
	.object({
		type: z.literal("string"),
		...common,
		default: z.string().max(100_000).optional(),
		min_length: z.number().int().min(0).max(100_000).optional(),
		max_length: z.number().int().min(1).max(100_000),
		multiline: z.boolean().optional(),
	})
	.strict();

const IntegerParamSchema = z
	.object({
		type: z.literal("integer"),
		...common,
		default: z.number().int().optional(),
		default_from: DefaultFromSchema.optional(),
		/** No value from the client: a random one in [minimum, maximum] (a seed). */
		random_default: z.boolean().optional(),
		minimum: z.number().int(),
		maximum: z.number().int(),
		multiple_of: z.number().int().min(1).optional(),
	})
	.strict();

const NumberParamSchema = z
	.object({
		type: z.literal("number"),
		...common,
		default: z.number().optional(),
		default_from: DefaultFromSchema.optional(),
		minimum: z.number(),
		maximum: z.number(),
	})
	.strict();

const BooleanParamSchema = z
	.object({ type: z.literal("boolean"), ...common, default: z.boolean().optional() })
	.strict();

const EnumParamSchema = z
	.object({
		type: z.literal("enum"),
		...common,
		values: z
			.array(z.union([z.string().min(1).max(200), z.number()]))
			.min(1)
			.max(200),
		default: z.union([z.string(), z.number()]).optional(),
	})
	.strict();

const ResolutionParamSchema = z
	.object({
		type: z.literal("resolution"),
		...common,
		default: z.string().regex(/^\d+x\d+$/),
		min_side: z.number().int().min(1),
		max_side: z.number().int().min(1).max(8192),
		multiple_of: z.number().int().min(1).max(256),
		/** Largest width × height: the GPU memory bound of a video model. */
		max_pixels: z.number().int().min(1).optional(),
	})
	.strict();

export const ParameterSchema = z.discriminatedUnion("type", [
	StringParamSchema,
	IntegerParamSchema,
	NumberParamSchema,
	BooleanParamSchema,
	EnumParamSchema,
	ResolutionParamSchema,
]);
export type ParameterSpec = z.infer<typeof ParameterSchema>;

const Ref = z.string().regex(NAME);

/** `round(duration × fps)` snapped to the nearest `step·k + 1` (Wan packs 4 frames per latent step after the first). */
const FramesRuleSchema = z
	.object({
		rule: z.literal("frames"),
		duration: Ref,
		fps: Ref,
		step: z.number().int().min(1).max(64),
		min: z.number().int().min(1).optional(),
		max: z.number().int().min(1).optional(),
		bind: Binds,
	})
	.strict();

/** `of × factor`, rounded: the step at which Wan's high-noise expert hands over to the low-noise one. */
const ScaleRuleSchema = z
	.object({
		rule: z.literal("scale"),
		of: Ref,
		factor: z.number().positive(),
		round: z.enum(["floor", "ceil", "nearest"]),
		min: z.number().int().optional(),
		max: z.number().int().optional(),
		bind: Binds,
	})
	.strict();

/** `ceil(of / size)`: how many fixed-length chunks cover a length (frames in S2V's 77-frame segments). */
const ChunksRuleSchema = z
	.object({
		rule: z.literal("chunks"),
		of: Ref,
		size: z.number().int().min(1),
		min: z.number().int().min(1).optional(),
		max: z.number().int().min(1).optional(),
		bind: Binds,
	})
	.strict();

export const DerivedSchema = z.discriminatedUnion("rule", [FramesRuleSchema, ScaleRuleSchema, ChunksRuleSchema]);
export type DerivedSpec = z.infer<typeof DerivedSchema>;

export const COMPARE_OPS = ["<", "<=", ">", ">=", "!="] as const;

/** A rule over several values: `left op right`, where each side names a parameter or a derived value. */
const CompareRuleSchema = z
	.object({
		rule: z.literal("compare"),
		left: Ref,
		op: z.enum(COMPARE_OPS),
		right: z.union([Ref, z.number()]),
		message: z.string().min(1).max(300),
	})
	.strict();

export const CrossRuleSchema = z.discriminatedUnion("rule", [CompareRuleSchema]);
export type CrossRule = z.infer<typeof CrossRuleSchema>;

/** An API-format ComfyUI prompt: node id → class and inputs (a link is `[node id, output index]`). */
export const WorkflowGraphSchema = z.record(
	z.string().regex(NODE_ID),
	z
		.object({
			class_type: z.string().min(1).max(200),
			inputs: z.record(z.string(), z.unknown()),
			_meta: z
				.object({ title: z.string().max(200).optional() })
				.loose()
				.optional(),
		})
		.strict(),
);
export type WorkflowGraph = z.infer<typeof WorkflowGraphSchema>;

const WorkflowSchema = z
	.object({
		graph: WorkflowGraphSchema,
		output: z
			.object({
				node: z.string().regex(NODE_ID),
				media: z.literal("video/mp4"),
				/** The save node's `filename_prefix`: set per job so outputs of concurrent jobs never mix. */
				prefix: NodeInputSchema,
			})
			.strict(),
	})
	.strict();

/**
 * Per-request LoRAs: each one becomes a `LoraLoaderModelOnly` chained in front of every `targets` input (a model
 * link), in the order given; its file name is bound on the GPU host once the file is there.
 */
const LoraSlotSchema = z
	.object({
		max: z.number().int().min(1).max(8),
		max_bytes: z
			.number()
			.int()
			.min(1)
			.max(4 * 1024 ** 3),
		targets: z.array(NodeInputSchema).min(1).max(8),
		strength: z.object({ minimum: z.number(), maximum: z.number(), default: z.number() }).strict(),
	})
	.strict();

export const COMFY_FOLDERS = [
	"checkpoints",
	"diffusion_models",
	"unet",
	"loras",
	"text_encoders",
	"clip",
	"clip_vision",
	"vae",
	"audio_encoders",
	/** ComfyUI-WanVideoWrapper's Wav2VecModelLoader (MultiTalk, InfiniteTalk) reads its audio encoders here. */
	"wav2vec2",
	"model_patches",
	"upscale_models",
	"embeddings",
] as const;

/** One weight file: where ComfyUI looks for it, how to check it, where to fetch it from (R2 copy first). */
export const ModelFileSchema = z
	.object({
		folder: z.enum(COMFY_FOLDERS),
		name: z
			.string()
			.min(1)
			.max(255)
			.regex(/^[^/\\]+(?:\/[^/\\]+)*$/)
			.refine((n) => !n.split("/").some((p) => p === ".." || p === "."), "no `.` or `..` segments"),
		size: z.number().int().min(1).optional(),
		sha256: z.string().regex(SHA256).optional(),
		source: z
			.url({ protocol: /^https$/ })
			.max(2048)
			.optional(),
		/** The key of the operator's copy in the R2 bucket (`npm run models -- push`). */
		r2_key: z
			.string()
			.regex(/^models\/[A-Za-z0-9._/-]{1,400}$/)
			.optional(),
	})
	.strict();
export type ModelFile = z.infer<typeof ModelFileSchema>;

const CustomNodeSchema = z
	.object({
		repository: z.url({ protocol: /^https$/ }).max(512),
		commit: z.string().regex(/^[0-9a-f]{40}$/),
		/** The node classes it provides that the workflow uses. */
		nodes: z.array(z.string().min(1).max(200)).min(1).max(200),
	})
	.strict();
export type CustomNode = z.infer<typeof CustomNodeSchema>;

const ThroughputSchema = z
	.object({
		seconds_per_frame: z.number().positive(),
		width: z.number().int().min(1),
		height: z.number().int().min(1),
		gpu: z.string().min(1).max(100),
		source: z.enum(["measured", "estimated"]),
		note: z.string().max(500).optional(),
	})
	.strict();

const VerificationSchema = z
	.object({
		checked: z.array(z.string().min(1).max(300)).max(32),
		awaiting_gpu: z.array(z.string().min(1).max(300)).max(32),
	})
	.strict();

const ManifestBaseSchema = z
	.object({
		$schema: z.string().max(512).optional(),
		format: z.literal(MANIFEST_FORMAT),
		id: z.string().regex(MODEL_ID, "lowercase letters, digits, '.', '_', '-'; at most 64"),
		version: z.string().regex(VERSION, "letters, digits, '.', '_', '+', '-'; at most 32"),
		title: z.string().min(1).max(80),
		description: z.string().min(1).max(2000),
		tags: z
			.array(z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/))
			.max(16)
			.default([]),
		kind: z.enum(["comfyui", "builtin"]),
		inputs: z.partialRecord(z.enum(MEDIA_KINDS), InputFileSchema),
		parameters: z.record(z.string().regex(NAME), ParameterSchema),
		derived: z.record(z.string().regex(NAME), DerivedSchema).default({}),
		rules: z.array(CrossRuleSchema).max(32).default([]),
		workflow: WorkflowSchema.optional(),
		loras: LoraSlotSchema.optional(),
		files: z.array(ModelFileSchema).max(64).default([]),
		custom_nodes: z.array(CustomNodeSchema).max(32).default([]),
		gpu: z
			.object({ memory_gb: z.number().positive().max(1024) })
			.strict()
			.optional(),
		throughput: ThroughputSchema.optional(),
		verification: VerificationSchema.optional(),
	})
	.strict();

export type ModelManifest = z.infer<typeof ManifestBaseSchema>;

/** The models that run inside the GPU worker's own code, not through ComfyUI. */
export const BUILTIN_MODELS = ["preview"] as const;

/**
 * The manifest, with the checks that span its parts: every binding names a node input of the graph, every
 * reference names a value declared before it, defaults satisfy their own ranges, and a kind has what it needs.
 */
export const ModelManifestSchema = ManifestBaseSchema.superRefine((m, ctx) => {
	for (const issue of manifestIssues(m)) ctx.addIssue({ code: "custom", path: issue.path, message: issue.message });
}).openapi("ModelManifest", {
	description: "A model as data: see docs/models.md. Validated as a whole; `models/manifest.schema.json` for editors.",
});

interface Issue {
	path: (string | number)[];
	message: string;
}

function manifestIssues(m: ModelManifest): Issue[] {
	const issues: Issue[] = [];
	const add = (path: (string | number)[], message: string) => issues.push({ path, message });
	const graph = m.workflow?.graph;

	if (m.kind === "builtin") {
		if (!(BUILTIN_MODELS as readonly string[]).includes(m.id)) {
			add(["id"], `a builtin model is one of ${BUILTIN_MODELS.join(", ")}`);
		}
		for (const part of ["workflow", "loras", "gpu"] as const) {
			if (m[part] !== undefined) add([part], "a builtin model has none: it runs in the GPU worker's own code");
		}
		if (m.files.length > 0) add(["files"], "a builtin model needs no files");
	} else {
		if (!m.workflow) add(["workflow"], "a comfyui model needs its workflow");
		if (!m.gpu) add(["gpu"], "a comfyui model states the GPU memory it needs");
	}

	const checkBind = (path: (string | number)[], binds: NodeInput[], isResolution = false) => {
		for (const [i, b] of binds.entries()) {
			if (m.kind === "builtin") {
				add([...path, i], "a builtin model has no workflow to bind to");
				continue;
			}
			const node = graph?.[b.node];
			if (!graph) continue;
			if (!node) {
				add([...path, i, "node"], `no node ${b.node} in the workflow`);
				continue;
			}
			if (!(b.input in node.inputs)) {
				add([...path, i, "input"], `node ${b.node} (${node.class_type}) has no input ${b.input}`);
			}
			if (isResolution !== (b.part !== undefined)) {
				add(
					[...path, i, "part"],
					isResolution ? "a resolution binds its width or height" : "only a resolution has parts",
				);
			}
		}
	};

	for (const [kind, spec] of Object.entries(m.inputs)) {
		if (!spec) continue;
		if (m.kind === "comfyui" && spec.bind.length === 0) add(["inputs", kind, "bind"], "bind the file to a loader node");
		checkBind(["inputs", kind, "bind"], spec.bind);
	}

	const declared = new Set<string>();
	for (const [name, p] of Object.entries(m.parameters)) {
		const path = ["parameters", name];
		if ((MEDIA_KINDS as readonly string[]).includes(name) || name === "loras") {
			add(path, `"${name}" is an input of its own, not a parameter`);
		}
		checkBind([...path, "bind"], p.bind, p.type === "resolution");
		for (const message of parameterIssues(p)) add(path, message);
		if ("default_from" in p && p.default_from && !m.inputs[p.default_from.input]) {
			add([...path, "default_from", "input"], `the model has no ${p.default_from.input} input`);
		}
		declared.add(name);
	}

	const numeric = (name: string) => {
		const p = m.parameters[name];
		return m.derived[name] !== undefined || p?.type === "integer" || p?.type === "number";
	};
	for (const [name, d] of Object.entries(m.derived)) {
		const path = ["derived", name];
		if (m.parameters[name]) add(path, `"${name}" is already a parameter`);
		const refs = d.rule === "frames" ? [d.duration, d.fps] : [d.of];
		for (const ref of refs) {
			if (!declared.has(ref)) add(path, `${ref} is not a parameter or an earlier derived value`);
			else if (!numeric(ref)) add(path, `${ref} is not a number`);
		}
		if (d.min !== undefined && d.max !== undefined && d.min > d.max) add(path, "min is above max");
		checkBind([...path, "bind"], d.bind);
		declared.add(name);
	}

	m.rules.forEach((r, i) => {
		for (const side of [r.left, r.right]) {
			if (typeof side === "string" && !declared.has(side))
				add(["rules", i], `${side} is not a parameter or derived value`);
		}
	});

	if (m.workflow && graph) {
		const out = graph[m.workflow.output.node];
		if (!out) add(["workflow", "output", "node"], `no node ${m.workflow.output.node} in the workflow`);
		checkBind(["workflow", "output", "prefix"], [m.workflow.output.prefix]);
		for (const [id, node] of Object.entries(graph)) {
			for (const [input, value] of Object.entries(node.inputs)) {
				if (isLink(value) && !graph[value[0]]) {
					add(["workflow", "graph", id, "inputs", input], `links to node ${value[0]}, which is not in the workflow`);
				}
			}
		}
	}
	if (m.loras) {
		checkBind(["loras", "targets"], m.loras.targets);
		const s = m.loras.strength;
		if (s.minimum > s.maximum || s.default < s.minimum || s.default > s.maximum) {
			add(["loras", "strength"], "default within [minimum, maximum]");
		}
		if (graph) {
			m.loras.targets.forEach((t, i) => {
				if (!isLink(graph[t.node]?.inputs[t.input])) add(["loras", "targets", i], "a LoRA target is a model link");
			});
		}
	}
	const seen = new Set<string>();
	m.files.forEach((f, i) => {
		const key = `${f.folder}/${f.name}`;
		if (seen.has(key)) add(["files", i], `${key} is listed twice`);
		seen.add(key);
		if (!f.source && !f.r2_key) add(["files", i], "a file needs a public `source`, an `r2_key`, or both");
	});
	return issues;
}

/** A parameter's own consistency: its range is a range and its default lies in it. */
function parameterIssues(p: ParameterSpec): string[] {
	switch (p.type) {
		case "string":
			if (p.min_length !== undefined && p.min_length > p.max_length) return ["min_length is above max_length"];
			if (p.default !== undefined && p.default.length > p.max_length) return ["the default is longer than max_length"];
			return [];
		case "integer":
		case "number": {
			if (p.minimum > p.maximum) return ["minimum is above maximum"];
			if (p.default !== undefined && (p.default < p.minimum || p.default > p.maximum)) {
				return ["the default is outside [minimum, maximum]"];
			}
			if (p.type === "integer" && p.multiple_of && p.default !== undefined && p.default % p.multiple_of !== 0) {
				return [`the default is not a multiple of ${p.multiple_of}`];
			}
			return [];
		}
		case "enum":
			return p.default !== undefined && !p.values.includes(p.default) ? ["the default is not one of the values"] : [];
		case "resolution": {
			if (p.min_side > p.max_side) return ["min_side is above max_side"];
			const [w = 0, h = 0] = p.default.split("x").map(Number);
			const fits = [w, h].every((s) => s >= p.min_side && s <= p.max_side && s % p.multiple_of === 0);
			if (!fits || (p.max_pixels !== undefined && w * h > p.max_pixels)) return ["the default does not fit the limits"];
			return [];
		}
		case "boolean":
			return [];
	}
}

/** A ComfyUI link: `[source node id, output index]`. */
export function isLink(value: unknown): value is [string, number] {
	return Array.isArray(value) && value.length === 2 && typeof value[0] === "string" && Number.isInteger(value[1]);
}

/** The manifest format as JSON Schema (2020-12), what `models/manifest.schema.json` holds for editors. */
export function manifestJsonSchema(): Record<string, unknown> {
	const schema = z.toJSONSchema(ModelManifestSchema, { io: "input", target: "draft-2020-12", unrepresentable: "any" });
	return {
		...schema,
		$id: "https://reelgate.dev/schemas/model-manifest-1.json",
		title: "Reelgate model manifest",
		description:
			"A model as data: identity, input files, parameter schema, ComfyUI workflow, files. See docs/models.md.",
	};
}
