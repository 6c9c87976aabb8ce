// POST /v1/jobs checks `input` against the named model's manifest: its files, its parameter schema, its derived
// values, and never clamps a value past a limit silently. A job records the manifest version it runs.
import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import still from "../data/still-video-manifest.json";
import { emulator, putPodBackend } from "../emulators/pod/harness";
import { ADMIN, call, newAccount, PNG, upload, wav } from "../helpers/api";
import { stepUntil } from "../helpers/job-object";
import { wavBytes } from "../helpers/media";

let auth: Record<string, string>;
let image: string;
let longAudio: string;

interface Problem {
	status: number;
	code: string;
	detail: string;
	errors?: { path: string; message: string }[];
}

/** Jobs this file started on pods: canceled at the end. */
const created: string[] = [];
const ended = (j: { status: string }) => ["succeeded", "failed", "canceled"].includes(j.status);

/**
 * POST /v1/jobs. A job on a ComfyUI backend is run to its end at once: the emulator, shared with other files, runs
 * one prompt at a time, oldest first, so a prompt left queued here would hold up theirs.
 */
async function post(body: unknown): Promise<Response> {
	const res = await call("/v1/jobs", { method: "POST", headers: auth, body: JSON.stringify(body) });
	if (res.status !== 202) return res;
	const job = (await res.clone().json()) as { id: string; backend: { kind: string } };
	if (job.backend.kind === "comfyui") await stepUntil(job.id, ended);
	else created.push(job.id);
	return res;
}

afterAll(async () => {
	for (const id of created) {
		await call(`/v1/jobs/${id}/cancel`, { method: "POST", headers: auth });
		await stepUntil(id, ended);
	}
});

async function refused(body: unknown, status = 400): Promise<Problem> {
	const res = await post(body);
	expect(res.headers.get("content-type")).toBe("application/problem+json");
	expect(res.status).toBe(status);
	return (await res.json()) as Problem;
}

beforeAll(async () => {
	auth = await newAccount("models-jobs");
	image = await upload(auth, PNG, "image/png", "still.png");
	// 300 s of audio, at a sample rate low enough to stay small.
	longAudio = await upload(auth, wavBytes({ seconds: 300, sampleRate: 100 }), "audio/wav", "long.wav");
	expect((await putPodBackend("models-jobs-pod", { models: ["preview"] })).status).toBe(200);
	const { url, token } = inject("comfyEmulator");
	const res = await call("/v1/admin/backends/models-jobs-comfy", {
		method: "PUT",
		headers: ADMIN,
		body: JSON.stringify({ kind: "comfyui", config: { url, token }, enabled: false }),
	});
	expect(res.status).toBe(200);
});

describe("POST /v1/jobs against the model's parameter schema", () => {
	it.each([
		["a steps past wan2.2-i2v's range", "wan2.2-i2v", { steps: 60 }, "input.steps: must be an integer from 2 to 50."],
		[
			"a resolution over wan2.2-i2v's pixel budget",
			"wan2.2-i2v",
			{ resolution: "1280x1280" },
			"input.resolution: must be WIDTHxHEIGHT, each side a multiple of 16 from 128 to 1280, at most 921600 pixels.",
		],
		[
			"a duration wan2.2-i2v cannot render",
			"wan2.2-i2v",
			{ duration_s: 12 },
			"input.duration_s: gives frames 193 (duration_s 12, fps 16); wan2.2-i2v takes 5 to 161.",
		],
		[
			"a parameter the model does not take",
			"wan2.2-i2v",
			{ guidance: 7 },
			"input.guidance: wan2.2-i2v has no parameter guidance; it takes prompt, negative_prompt, resolution, duration_s, fps, seed, steps.",
		],
		[
			"a file the model does not take",
			"wan2.2-i2v",
			{ audio: "upl_x" },
			"input.audio: wan2.2-i2v takes no audio; it takes image.",
		],
		["a missing required file", "wan2.2-s2v", {}, "input.audio: is required by wan2.2-s2v."],
	])("refuses %s, naming the field and the rule", async (_what, model, extra, detail) => {
		const problem = await refused({ model, input: { image: "upl_x", ...extra } });
		expect(problem.code).toBe("invalid_request");
		expect(problem.detail).toBe(detail);
		expect(problem.errors?.[0]?.path).toBe(`json.${detail.slice(0, detail.indexOf(":"))}`);
	});

	it("refuses 300 s of audio for the preview, which renders at most 60 s, instead of cutting it", async () => {
		const problem = await refused({ model: "preview", input: { image, audio: longAudio } });
		expect(problem.detail).toBe(
			"input.audio: lasts 300 s; preview takes duration_s of at most 60: give input.duration_s to render part of it.",
		);
		// Naming a duration that fits renders part of the audio.
		const res = await post({ model: "preview", input: { image, audio: longAudio, duration_s: 20 } });
		expect(res.status).toBe(202);
	});

	it("names the known models, registered ones included, for an unknown id", async () => {
		expect(
			(await call("/v1/admin/models/still-video", { method: "PUT", headers: ADMIN, body: JSON.stringify(still) }))
				.status,
		).toBe(201);
		const problem = await refused({ model: "sora", input: { image } });
		expect(problem.detail).toBe(
			'There is no model "sora"; the models are infinitetalk, preview, still-video, wan2.2-i2v, wan2.2-i2v-gguf, wan2.2-s2v.',
		);
		expect(problem.errors).toEqual([
			{
				path: "json.model",
				message: "one of infinitetalk, preview, still-video, wan2.2-i2v, wan2.2-i2v-gguf, wan2.2-s2v",
			},
		]);
	});

	it("checks a registered model's own parameters", async () => {
		const problem = await refused({ model: "still-video", input: { image, fps: 31 } });
		expect(problem.detail).toBe("input.fps: must be an integer from 1 to 30.");
	});
});

describe("the version a job runs", () => {
	it("is recorded on the job, and a job of a retired model is still there to read", async () => {
		const pv = await post({
			model: "preview",
			input: { image, audio: await upload(auth, wav(1), "audio/wav", "a.wav") },
		});
		expect(pv.status).toBe(202);
		expect(await pv.json()).toMatchObject({ model: "preview", model_version: "1" });

		const v2 = { ...structuredClone(still), version: "2", description: "The second version." };
		expect(
			(await call("/v1/admin/models/still-video", { method: "PUT", headers: ADMIN, body: JSON.stringify(v2) })).status,
		).toBe(201);
		await call("/v1/admin/backends/models-jobs-comfy", {
			method: "PUT",
			headers: ADMIN,
			body: JSON.stringify({ kind: "comfyui", config: inject("comfyEmulator"), enabled: true }),
		});
		const res = await post({ model: "still-video", input: { image, duration_s: 1 } });
		expect(res.status).toBe(202);
		const job = (await res.json()) as { id: string; model_version: string };
		expect(job.model_version).toBe("2");

		expect((await call("/v1/admin/models/still-video", { method: "DELETE", headers: ADMIN })).status).toBe(204);
		const after = await post({ model: "still-video", input: { image } });
		expect(after.status).toBe(400);
		const kept = await call(`/v1/jobs/${job.id}`, { headers: auth });
		expect(await kept.json()).toMatchObject({ model: "still-video", model_version: "2" });
	});
});

describe("routing by GPU memory", () => {
	it("sends the fp8 Wan model only to a GPU that holds it, and its GGUF variant to a 24 GB one", async () => {
		const { url, token } = inject("comfyEmulator");
		for (const [name, base] of [
			["models-jobs-4090", url],
			["models-jobs-h100", `${url}/h100`],
		] as const) {
			const put = await call(`/v1/admin/backends/${name}`, {
				method: "PUT",
				headers: ADMIN,
				body: JSON.stringify({ kind: "comfyui", config: { url: base, token } }),
			});
			expect(put.status).toBe(200);
			// The health check records the GPU the server reports; routing reads it.
			const test = await call(`/v1/admin/backends/${name}/test`, { method: "POST", headers: ADMIN });
			expect(((await test.json()) as { reachable: boolean }).reachable).toBe(true);
		}
		const on = (model: string, backend: string) => post({ model, backend, input: { image } });
		const refused = await on("wan2.2-i2v", "models-jobs-4090");
		expect(refused.status).toBe(409);
		expect(((await refused.json()) as Problem).detail).toBe(
			'Backend "models-jobs-4090" does not serve model wan2.2-i2v.',
		);
		expect((await on("wan2.2-i2v-gguf", "models-jobs-4090")).status).toBe(202);
		expect((await on("wan2.2-i2v", "models-jobs-h100")).status).toBe(202);
		// Unpinned, the fp8 model goes to the card that holds it.
		const routed = await post({ model: "wan2.2-i2v", input: { image } });
		expect(((await routed.json()) as { backend: { name: string } }).backend.name).not.toBe("models-jobs-4090");
		const listed = (await (await call("/v1/models/wan2.2-i2v-gguf", { headers: auth })).json()) as {
			gpu: { memory_gb: number };
		};
		expect(listed.gpu.memory_gb).toBe(20);
	});
});

describe("LoRAs by URL", () => {
	const lora = (over: Record<string, unknown> = {}) => ({
		url: "https://files.example.com/style.safetensors",
		...over,
	});

	it.each([
		["a model without a LoRA slot", "preview", [lora()], "input.loras: preview takes no LoRAs.", 400],
		[
			"more than the slot takes",
			"wan2.2-i2v",
			[lora(), lora(), lora(), lora()],
			"input.loras: wan2.2-i2v takes at most 3 LoRAs.",
			400,
		],
		[
			"a plain-http URL",
			"wan2.2-i2v",
			[lora({ url: "http://files.example.com/a.safetensors" })],
			"input.loras[0].url: The URL http://files.example.com/a.safetensors must use https.",
			422,
		],
		[
			"a private address",
			"wan2.2-i2v",
			[lora({ url: "https://10.0.0.5/a.safetensors" })],
			"input.loras[0].url: The URL https://10.0.0.5/a.safetensors points at a private network address.",
			422,
		],
		[
			"a strength out of range",
			"wan2.2-i2v",
			[lora({ strength: 9 })],
			"input.loras[0].strength: must be a number from -4 to 4.",
			400,
		],
	] as const)(
		"refuses %s, naming the field and the rule (a refused URL is a 422, as everywhere)",
		async (_what, model, loras, detail, status) => {
			const problem = await refused({ model, input: { image: "upl_x", loras } }, status);
			expect(problem.detail).toBe(detail);
		},
	);

	it("refuses a LoRA job on a bare ComfyUI, which cannot fetch one", async () => {
		const res = await post({
			model: "wan2.2-i2v-gguf",
			backend: "models-jobs-4090",
			input: { image, loras: [lora()] },
		});
		expect(res.status).toBe(409);
	});

	it("sends the GPU worker each LoRA with a loader chained in front of both experts", async () => {
		expect((await putPodBackend("models-jobs-lora-pod", { models: ["wan2.2-i2v"] })).status).toBe(200);
		const sha256 = "a".repeat(64);
		const signed = "https://files.example.com/b.safetensors?X-Amz-Signature=s3cr3t";
		const res = await post({
			model: "wan2.2-i2v",
			backend: "models-jobs-lora-pod",
			input: {
				image,
				loras: [lora({ sha256 }), lora({ url: signed, strength: 0.5 })],
			},
		});
		expect(res.status).toBe(202);
		const created = (await res.json()) as { id: string; loras: unknown };
		// The job says which LoRAs it runs with, never a URL's signature; the GPU worker gets the URL whole.
		expect(created.loras).toEqual([
			{ url: "https://files.example.com/style.safetensors", strength: 1, sha256 },
			{ url: "https://files.example.com/b.safetensors", strength: 0.5 },
		]);
		const job = await stepUntil(created.id, (j) => j.remote_id !== null);
		const sent = (await (await emulator(`/_control/jobs/${job.remote_id}`)).json()) as {
			input: {
				workflow: { graph: Record<string, { class_type: string; inputs: Record<string, unknown> }>; loras: unknown[] };
			};
		};
		const { graph, loras } = sent.input.workflow;
		expect(loras).toEqual([
			{
				url: "https://files.example.com/style.safetensors",
				sha256,
				max_bytes: 2147483648,
				bind: [
					{ node: "lora_0_0", input: "lora_name" },
					{ node: "lora_1_0", input: "lora_name" },
				],
			},
			{
				url: signed,
				max_bytes: 2147483648,
				bind: [
					{ node: "lora_0_1", input: "lora_name" },
					{ node: "lora_1_1", input: "lora_name" },
				],
			},
		]);
		// ModelSamplingSD3 (5, 6) now reads the last LoRA of its chain, which reads the first, which reads the
		// LightX2V LoRA loader the model had.
		expect(graph["5"]?.inputs.model).toEqual(["lora_0_1", 0]);
		expect(graph.lora_0_1?.inputs).toEqual({ model: ["lora_0_0", 0], lora_name: "", strength_model: 0.5 });
		expect(graph.lora_0_0?.inputs).toEqual({ model: ["3", 0], lora_name: "", strength_model: 1 });
		expect(graph["6"]?.inputs.model).toEqual(["lora_1_1", 0]);
	});
});

describe("a GPU worker's inventory", () => {
	it("routes each model only to a worker that has its files and node classes", async () => {
		const { url, token } = inject("podEmulator");
		const stock = async (name: string, inventory: Record<string, unknown>) => {
			const res = await emulator(`/_control/inventory/${name}`, { method: "PUT", body: JSON.stringify(inventory) });
			expect(res.status).toBe(200);
			const put = await call(`/v1/admin/backends/${name}`, {
				method: "PUT",
				headers: ADMIN,
				body: JSON.stringify({ kind: "pod", config: { url: `${url}/inv/${name}`, token } }),
			});
			expect(put.status).toBe(200);
			const test = await call(`/v1/admin/backends/${name}/test`, { method: "POST", headers: ADMIN });
			expect(((await test.json()) as { reachable: boolean }).reachable).toBe(true);
		};
		const i2v = (await (await call("/v1/admin/models/wan2.2-i2v", { headers: ADMIN })).json()) as {
			manifest: { files: { folder: string; name: string }[] };
		};
		const classes = ["LoadImage", "ImageScale", "RepeatImageBatch", "CreateVideo", "SaveVideo"];
		// One worker with nothing but the core nodes a weight-free workflow needs; one with the fp8 Wan files
		// (the experts under `unet`, which ComfyUI reads as diffusion_models) but no ComfyUI answering.
		await stock("models-jobs-bare", { builtin: [], files: [], node_classes: classes });
		await stock("models-jobs-wan", {
			builtin: ["preview"],
			files: i2v.manifest.files.map((f) => `${f.folder === "diffusion_models" ? "unet" : f.folder}/${f.name}`),
		});
		const on = (model: string, backend: string, input: Record<string, unknown> = {}) =>
			post({ model, backend, input: { image, ...input } });
		expect((await on("wan2.2-i2v", "models-jobs-bare")).status).toBe(409);
		expect((await on("preview", "models-jobs-bare")).status).toBe(409);
		expect((await on("wan2.2-i2v", "models-jobs-wan")).status).toBe(202);
		expect((await on("preview", "models-jobs-wan")).status).toBe(202);
		// The GGUF variant's files are on neither.
		expect((await on("wan2.2-i2v-gguf", "models-jobs-wan")).status).toBe(409);
		await call("/v1/admin/models/still-video", { method: "PUT", headers: ADMIN, body: JSON.stringify(still) });
		expect((await on("still-video", "models-jobs-bare")).status).toBe(202);
		// The operator sees which backend runs a model, and why the others do not.
		const gguf = (await (await call("/v1/admin/models/wan2.2-i2v-gguf", { headers: ADMIN })).json()) as {
			backends: { name: string; serves: boolean; reason?: string }[];
		};
		const byName = Object.fromEntries(gguf.backends.map((b) => [b.name, b]));
		expect(byName["models-jobs-wan"]).toMatchObject({
			serves: false,
			reason: "it lacks files unet/Wan2.2-I2V-A14B-HighNoise-Q4_K_M.gguf, unet/Wan2.2-I2V-A14B-LowNoise-Q4_K_M.gguf",
		});
		expect(byName["models-jobs-bare"]?.reason).toMatch(/^it lacks files .*; node classes UnetLoaderGGUF, /);
		expect(byName["models-jobs-4090"]).toMatchObject({ serves: true });
		const fp8 = (await (await call("/v1/admin/models/wan2.2-i2v", { headers: ADMIN })).json()) as {
			backends: { name: string; reason?: string }[];
		};
		expect(fp8.backends.find((b) => b.name === "models-jobs-4090")?.reason).toBe(
			"its GPU has 23.6 GB, the model needs 48",
		);
		expect(fp8.backends.find((b) => b.name === "models-jobs-lora-pod")?.reason).toBeUndefined();
	});
});

describe("model files from the operator's R2", () => {
	it("gives the GPU worker a signed GET of each file's R2 copy, beside its public source", async () => {
		const bytes = new TextEncoder().encode("weights");
		await env.BUCKET.put("models/vae/extra.safetensors", bytes);
		const manifest = {
			...structuredClone(still),
			id: "still-files",
			files: [
				{
					folder: "vae",
					name: "extra.safetensors",
					size: bytes.byteLength,
					r2_key: "models/vae/extra.safetensors",
					source: "https://huggingface.co/example/extra/resolve/main/extra.safetensors",
				},
			],
		};
		const put = await call("/v1/admin/models/still-files", {
			method: "PUT",
			headers: ADMIN,
			body: JSON.stringify(manifest),
		});
		expect(put.status).toBe(201);
		expect((await putPodBackend("models-jobs-files-pod", { models: ["still-files"] })).status).toBe(200);
		const res = await post({ model: "still-files", backend: "models-jobs-files-pod", input: { image } });
		expect(res.status).toBe(202);
		const job = await stepUntil(((await res.json()) as { id: string }).id, (j) => j.remote_id !== null);
		const sent = (await (await emulator(`/_control/jobs/${job.remote_id}`)).json()) as {
			input: { workflow: { files: { path: string; size: number; url: string; source: string; r2_key?: string }[] } };
		};
		const [file] = sent.input.workflow.files;
		expect(file).toMatchObject({ path: "vae/extra.safetensors", size: 7, source: manifest.files[0]?.source });
		expect(file?.r2_key).toBeUndefined();
		const fetched = await call(file?.url ?? "");
		expect(fetched.status).toBe(200);
		expect(new Uint8Array(await fetched.arrayBuffer())).toEqual(bytes);
	});
});
