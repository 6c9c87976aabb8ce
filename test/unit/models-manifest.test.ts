import { describe, expect, it } from "vitest";
import modelFiles from "../../gpu-worker/model-files.json";
import committedSchema from "../../models/manifest.schema.json";
import wanI2v from "../../models/wan2.2-i2v.json";
import { workerModelFilesJson } from "../../src/models/files-list";
import { type ModelManifest, ModelManifestSchema, manifestJsonSchema } from "../../src/models/manifest";
import { SHIPPED_MANIFESTS } from "../../src/models/shipped";

const shipped = (id: string): ModelManifest => {
	const m = SHIPPED_MANIFESTS.find((x) => x.id === id);
	if (!m) throw new Error(`no shipped manifest ${id}`);
	return m;
};

// biome-ignore lint/suspicious/noExplicitAny: each case edits the manifest's JSON freely, to break one part of it.
type Json = any;

/** A deep copy of the shipped i2v manifest with `edit` applied: each case breaks one thing. */
function i2vWith(edit: (m: Json) => void): unknown {
	const m = structuredClone(wanI2v) as Json;
	edit(m);
	return m;
}

function issuePaths(raw: unknown): string[] {
	const result = ModelManifestSchema.safeParse(raw);
	if (result.success) return [];
	return result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
}

describe("shipped manifests", () => {
	it("parse, and name the models the API has always had", () => {
		expect(SHIPPED_MANIFESTS.map((m) => m.id).sort()).toEqual([
			"infinitetalk",
			"preview",
			"wan2.2-i2v",
			"wan2.2-i2v-gguf",
			"wan2.2-s2v",
		]);
		expect(shipped("preview").kind).toBe("builtin");
		expect(shipped("wan2.2-i2v").workflow?.output.node).toBe("17");
	});

	it("list every weight file their graph loads, each with a public source", () => {
		for (const m of SHIPPED_MANIFESTS.filter((x) => x.kind === "comfyui")) {
			const loaded = new Set<string>();
			for (const node of Object.values(m.workflow?.graph ?? {})) {
				for (const [input, value] of Object.entries(node.inputs)) {
					if (typeof value === "string" && /\.(safetensors|gguf|pt|pth|ckpt)$/.test(value))
						loaded.add(`${input}:${value}`);
				}
			}
			const listed = new Set(m.files.map((f) => f.name));
			for (const entry of loaded) expect(listed, `${m.id} loads ${entry}`).toContain(entry.split(":")[1]);
			// Comfy-Org's repackaged weights; the GGUF experts from QuantStack's conversion.
			for (const f of m.files) expect(f.source).toMatch(/^https:\/\/huggingface\.co\/(Comfy-Org|QuantStack|Kijai)\//);
		}
	});
});

describe("gpu-worker/model-files.json", () => {
	it("is the shipped manifests' files (run `npm run models -- files` after changing them)", () => {
		expect(modelFiles).toEqual(JSON.parse(workerModelFilesJson(SHIPPED_MANIFESTS)));
	});
});

describe("models/manifest.schema.json", () => {
	it("is the zod schema as JSON Schema (run `npm run models -- schema` after changing the format)", () => {
		expect(committedSchema).toEqual(JSON.parse(JSON.stringify(manifestJsonSchema())));
	});
});

describe("manifest checks across parts", () => {
	it.each([
		[
			"a binding to a missing node",
			(m: Json) => m.parameters.prompt.bind.push({ node: "99", input: "text" }),
			"parameters.prompt.bind.1.node",
		],
		[
			"a binding to a missing input",
			(m: Json) => (m.parameters.prompt.bind[0].input = "txt"),
			"parameters.prompt.bind.0.input",
		],
		[
			"a resolution bound without its part",
			(m: Json) => delete m.parameters.resolution.bind[0].part,
			"parameters.resolution.bind.0.part",
		],
		["a default outside its range", (m: Json) => (m.parameters.steps.default = 99), "parameters.steps"],
		[
			"a resolution default off the grid",
			(m: Json) => (m.parameters.resolution.default = "650x640"),
			"parameters.resolution",
		],
		["a derived value of an unknown parameter", (m: Json) => (m.derived.frames.fps = "rate"), "derived.frames"],
		["a derived value of a string", (m: Json) => (m.derived.split_step.of = "prompt"), "derived.split_step"],
		[
			"a link to a missing node",
			(m: Json) => (m.workflow.graph["15"].inputs.samples = ["42", 0]),
			"workflow.graph.15.inputs.samples",
		],
		["an output node that is not there", (m: Json) => (m.workflow.output.node = "99"), "workflow.output.node"],
		["a comfyui model without a workflow", (m: Json) => delete m.workflow, "workflow"],
		["a comfyui model without its GPU memory", (m: Json) => delete m.gpu, "gpu"],
		["an input file bound nowhere", (m: Json) => (m.inputs.image.bind = []), "inputs.image.bind"],
		["a file with no source", (m: Json) => delete m.files[0].source, "files.0"],
		["a file listed twice", (m: Json) => m.files.push(m.files[0]), "files.6"],
		["a file name that climbs", (m: Json) => (m.files[0].name = "../etc/passwd"), "files.0.name"],
		[
			"a LoRA target that is not a link",
			(m: Json) => (m.loras.targets = [{ node: "5", input: "shift" }]),
			"loras.targets.0",
		],
		["a parameter named like an input", (m: Json) => (m.parameters.image = m.parameters.prompt), "parameters.image"],
		[
			"a rule naming nothing",
			(m: Json) => m.rules.push({ rule: "compare", left: "nope", op: "<", right: 1, message: "x" }),
			"rules.0",
		],
		["an unknown field", (m: Json) => (m.colour = "red"), ""],
		["a later format", (m: Json) => (m.format = 2), "format"],
		["a builtin model that is not builtin", (m: Json) => (m.kind = "builtin"), "id"],
	])("refuses %s", (_name, edit, path) => {
		const issues = issuePaths(i2vWith(edit));
		expect(issues.length, "should be refused").toBeGreaterThan(0);
		expect(issues.map((i) => i.split(":")[0])).toContain(path);
	});

	it("accepts the shipped i2v manifest as it is", () => {
		expect(issuePaths(i2vWith(() => undefined))).toEqual([]);
	});
});
