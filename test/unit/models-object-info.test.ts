import { describe, expect, it } from "vitest";
// The progress fixture's two-chunk sound-to-video graph, the shape a longer s2v clip takes.
import twoChunks from "../../gpu-worker/tests/fixtures/comfyui-0.8.0-wan2.2-s2v-two-chunks.json";
import { templateFor } from "../../src/backends/workflows";
import { type ApiWorkflow, checkWorkflow, type ObjectInfo, type WorkflowProblem } from "../../src/models/object-info";
import { SHIPPED_MANIFESTS } from "../../src/models/shipped";
// Recorded from ComfyUI v0.8.0 (`--cpu`, no models) by gpu-worker/scripts/record_object_info.py.
import recorded from "../data/comfyui-object-info.json";

const objectInfo = recorded.nodes as unknown as ObjectInfo;
const SHIPPED = ["wan2.2-i2v", "wan2.2-s2v"] as const;

function shipped(model: (typeof SHIPPED)[number]): ApiWorkflow {
	const template = templateFor(model);
	if (!template) throw new Error(`no template for ${model}`);
	return structuredClone(template.workflow) as ApiWorkflow;
}

/**
 * The problems not explained by files the recording lacked: it ran with no models and no uploads, so a choice of
 * files lists none (or only ComfyUI's built-ins, such as the VAE's "pixel_space"). Every other input is checked.
 */
function beyondFiles(model: (typeof SHIPPED)[number], wf: ApiWorkflow, problems: WorkflowProblem[]) {
	const files = new Set([...Object.values(templateFor(model)?.required_files ?? {}).flat(), "input.png", "input.wav"]);
	return problems.filter((p) => {
		const value = wf[p.node]?.inputs[p.input ?? ""];
		return !((p.rule === "no_choices" || p.rule === "not_in_list") && files.has(String(value)));
	});
}

describe("the shipped workflows against ComfyUI v0.8.0's node definitions", () => {
	it("were recorded from the release the image pins", () => {
		expect(recorded.comfyui_version).toBe("0.8.0");
	});

	it.each(SHIPPED)("%s: ComfyUI would run it, given its files", (model) => {
		const wf = shipped(model);
		const problems = checkWorkflow(wf, objectInfo);
		expect(beyondFiles(model, wf, problems)).toEqual([]);
		// Each file the graph loads is among the problems: the check did look at every file choice.
		const files = Object.values(templateFor(model)?.required_files ?? {}).flat();
		const flagged = problems.map((p) => String(wf[p.node]?.inputs[p.input ?? ""]));
		expect(flagged).toEqual(expect.arrayContaining(files));
	});

	it("wan2.2-i2v-gguf: ComfyUI with ComfyUI-GGUF installed would run it, given its files", () => {
		const m = SHIPPED_MANIFESTS.find((x) => x.id === "wan2.2-i2v-gguf");
		const wf = structuredClone(m?.workflow?.graph ?? {}) as ApiWorkflow;
		// UnetLoaderGGUF as city96/ComfyUI-GGUF's nodes.py declares it at the commit the manifest pins: one
		// required input, unet_name, a choice of the .gguf files in the unet/diffusion_models folders; a MODEL out.
		const withGguf: ObjectInfo = {
			...objectInfo,
			UnetLoaderGGUF: { input: { required: { unet_name: [[]] } }, output: ["MODEL"], output_node: false },
		};
		expect(
			checkWorkflow(wf, objectInfo)
				.filter((p) => p.rule === "unknown_node")
				.map((p) => p.node),
		).toEqual(["1", "2"]);
		const files = new Set([...(m?.files ?? []).map((f) => f.name), "input.png"]);
		const beyond = checkWorkflow(wf, withGguf).filter((p) => {
			const value = String(wf[p.node]?.inputs[p.input ?? ""]);
			return !((p.rule === "no_choices" || p.rule === "not_in_list") && files.has(value));
		});
		expect(beyond).toEqual([]);
		// Everything but the two expert loaders is the fp8 graph.
		const fp8 = shipped("wan2.2-i2v");
		for (const id of Object.keys(fp8).filter((k) => k !== "1" && k !== "2")) expect(wf[id]).toEqual(fp8[id]);
	});

	it("infinitetalk: its core nodes would run, and every other class is a custom node it declares", () => {
		const m = SHIPPED_MANIFESTS.find((x) => x.id === "infinitetalk");
		const wf = structuredClone(m?.workflow?.graph ?? {}) as ApiWorkflow;
		// The three MultiTalk nodes as multitalk/nodes.py declares them at the commit the manifest pins.
		const withMultiTalk: ObjectInfo = {
			...objectInfo,
			MultiTalkModelLoader: { input: { required: { model: [[]] } }, output: ["MULTITALKMODEL"] },
			Wav2VecModelLoader: {
				input: {
					required: {
						model: [[]],
						base_precision: [["fp32", "bf16", "fp16"]],
						load_device: [["main_device", "offload_device"]],
					},
				},
				output: ["WAV2VECMODEL"],
			},
			MultiTalkWav2VecEmbeds: {
				input: {
					required: {
						wav2vec_model: ["WAV2VECMODEL"],
						audio_1: ["AUDIO"],
						normalize_loudness: ["BOOLEAN", { default: true }],
						num_frames: ["INT", { default: 81, min: 1, max: 10000 }],
						fps: ["FLOAT", { default: 25, min: 1, max: 60 }],
						audio_scale: ["FLOAT", { default: 1, min: 0, max: 100 }],
						audio_cfg_scale: ["FLOAT", { default: 1, min: 0, max: 100 }],
						multi_audio_type: [["para", "add"]],
					},
					optional: { audio_2: ["AUDIO"], add_noise_floor: ["BOOLEAN"], smooth_transients: ["BOOLEAN"] },
				},
				output: ["MULTITALK_EMBEDS", "AUDIO", "INT"],
			},
		};
		const problems = checkWorkflow(wf, withMultiTalk);
		const declared = new Set(m?.custom_nodes.flatMap((c) => c.nodes));
		const unknown = new Set(problems.filter((p) => p.rule === "unknown_node").map((p) => p.class_type));
		// Exactly the declared custom classes whose code was not read are unknown: nothing else is missing.
		expect(unknown).toEqual(new Set([...declared].filter((c) => !(c in withMultiTalk))));
		const files = new Set([...(m?.files ?? []).map((f) => f.name), "input.png", "input.wav"]);
		const beyond = problems.filter((p) => {
			if (p.rule === "unknown_node") return false;
			const value = String(wf[p.node]?.inputs[p.input ?? ""]);
			return !((p.rule === "no_choices" || p.rule === "not_in_list") && files.has(value));
		});
		expect(beyond).toEqual([]);
	});

	it("the two-chunk s2v graph of the progress fixture is one ComfyUI would run", () => {
		const wf = twoChunks.workflow as unknown as ApiWorkflow;
		expect(beyondFiles("wan2.2-s2v", wf, checkWorkflow(wf, objectInfo))).toEqual([]);
	});
});

describe("a change ComfyUI would reject is named by node, class, input and rule", () => {
	type Edit = (wf: ApiWorkflow) => void;
	const node = (wf: ApiWorkflow, id: string) => {
		const found = wf[id];
		if (!found) throw new Error(`no node ${id}`);
		return found;
	};
	it.each<[string, Edit, Partial<{ node: string; class_type: string; input: string; rule: string }>]>([
		[
			"a class not installed",
			(wf) => {
				node(wf, "16").class_type = "VHS_VideoCombine";
			},
			{ node: "16", class_type: "VHS_VideoCombine", rule: "unknown_node" },
		],
		[
			"a required input removed",
			(wf) => {
				delete node(wf, "13").inputs.cfg;
			},
			{ node: "13", class_type: "KSamplerAdvanced", input: "cfg", rule: "missing_input" },
		],
		[
			"an input renamed",
			(wf) => {
				// An optional input, so the old name's absence is no problem of its own.
				const n = node(wf, "12");
				n.inputs.image = n.inputs.start_image;
				delete n.inputs.start_image;
			},
			{ node: "12", input: "image", rule: "unknown_input" },
		],
		[
			"steps above the maximum",
			(wf) => {
				node(wf, "14").inputs.steps = 20000;
			},
			{ node: "14", input: "steps", rule: "above_max" },
		],
		[
			"a width below the minimum",
			(wf) => {
				node(wf, "12").inputs.width = 8;
			},
			{ node: "12", class_type: "WanImageToVideo", input: "width", rule: "below_min" },
		],
		[
			"a fractional integer",
			(wf) => {
				node(wf, "12").inputs.length = 80.5;
			},
			{ node: "12", input: "length", rule: "wrong_type" },
		],
		[
			"a sampler that does not exist",
			(wf) => {
				node(wf, "13").inputs.sampler_name = "euler_fast";
			},
			{ node: "13", input: "sampler_name", rule: "not_in_list" },
		],
		[
			"a SaveVideo format it does not offer",
			(wf) => {
				node(wf, "17").inputs.format = "gif";
			},
			{ node: "17", class_type: "SaveVideo", input: "format", rule: "not_in_list" },
		],
		[
			"a link carrying the wrong type",
			(wf) => {
				node(wf, "15").inputs.vae = ["7", 0];
			},
			{ node: "15", class_type: "VAEDecode", input: "vae", rule: "link_type_mismatch" },
		],
		[
			"a link to a missing node",
			(wf) => {
				node(wf, "14").inputs.latent_image = ["99", 0];
			},
			{ node: "14", input: "latent_image", rule: "bad_link" },
		],
		[
			"a link to an output the node lacks",
			(wf) => {
				node(wf, "14").inputs.latent_image = ["12", 3];
			},
			{ node: "14", input: "latent_image", rule: "bad_link" },
		],
		[
			"a value where a link belongs",
			(wf) => {
				node(wf, "15").inputs.samples = 1;
			},
			{ node: "15", input: "samples", rule: "bad_link" },
		],
		[
			"no output node",
			(wf) => {
				delete wf["17"];
			},
			{ node: "", rule: "no_output" },
		],
	])("%s", (_, edit, expected) => {
		const wf = shipped("wan2.2-i2v");
		edit(wf);
		const problems = beyondFiles("wan2.2-i2v", wf, checkWorkflow(wf, objectInfo));
		expect(problems).toEqual([expect.objectContaining(expected)]);
		expect(problems[0]?.detail).toBeTruthy();
	});

	it("checks a file choice when the server lists files", () => {
		const withFiles = structuredClone(objectInfo);
		const vae = withFiles.VAELoader;
		if (!vae?.input.required) throw new Error("no VAELoader");
		vae.input.required.vae_name = [["wan_2.1_vae.safetensors"]];
		const wf = shipped("wan2.2-i2v");
		expect(checkWorkflow(wf, withFiles).filter((p) => p.class_type === "VAELoader")).toEqual([]);
		node(wf, "10").inputs.vae_name = "wan2.2_vae.safetensors";
		expect(checkWorkflow(wf, withFiles).filter((p) => p.class_type === "VAELoader")).toEqual([
			expect.objectContaining({ node: "10", input: "vae_name", rule: "not_in_list" }),
		]);
	});
});
