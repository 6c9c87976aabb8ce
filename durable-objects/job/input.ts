import type { GpuJobInput } from "../../src/backends/types";
import { configOf } from "../../src/config";
import type { JobParams, JobSpec, UploadRef } from "../../src/jobs/record";
import { manifestAt } from "../../src/models/catalog";
import { type FilledWorkflow, fillWorkflow } from "../../src/models/fill";
import { resolveParams } from "../../src/models/params";
import type { Model } from "../../src/schemas/jobs";
import { signerFor } from "../../src/storage";
import { signOutputTarget } from "../../src/storage/output";

interface ModelDefaults {
	width: number;
	height: number;
	fps: number;
}

/** Per-model defaults: the CPU preview renders small and smooth; Wan 2.2 is trained at 16 fps. */
export function modelDefaults(model: Model): ModelDefaults {
	switch (model) {
		case "preview":
			// 16:9 in multiples of 16, which every model's encoder path accepts.
			return { width: 512, height: 288, fps: 24 };
		default:
			// Wan 2.2, and any registered ComfyUI model: its workflow is filled from its manifest's own defaults.
			return { width: 640, height: 640, fps: 16 };
	}
}

/** The `params` of the GPU job from the request's params and the model's defaults. */
export function buildParams(model: Model, params: JobParams, hasAudio: boolean): Record<string, string | number> {
	const d = modelDefaults(model);
	const out: Record<string, string | number> = { width: d.width, height: d.height, fps: params.fps ?? d.fps };
	if (params.resolution) {
		const [w, h] = params.resolution.split("x").map(Number);
		if (w && h) {
			out.width = w;
			out.height = h;
		}
	}
	// With audio and no duration, the worker takes the audio's length (protocol: duration rules).
	if (params.duration_s !== undefined) out.duration_s = params.duration_s;
	else if (!hasAudio) out.duration_s = 5;
	if (params.prompt !== undefined) out.prompt = params.prompt;
	if (params.negative_prompt !== undefined) out.negative_prompt = params.negative_prompt;
	if (params.seed !== undefined) out.seed = params.seed;
	if (params.steps !== undefined) out.steps = params.steps;
	return out;
}

/**
 * The GPU job input per docs/gpu-job-protocol.md, with fresh signed URLs: a GET per input upload and the output
 * target (src/storage/output.ts): a PUT, plus `parts_url` when `MAX_VIDEO_BYTES` exceeds what one PUT may carry.
 * Built at each submission, so a resubmitted job never carries expired URLs. Signing only: no storage call.
 */
export async function buildJobInput(env: Env, spec: JobSpec, videoKey: string): Promise<GpuJobInput> {
	const config = configOf(env);
	const signer = signerFor(env, spec.origin);
	const expiresInS = config.backendUrlTtlS;
	const image = await signer.signGet(spec.inputs.image.object_key, { expiresInS });
	const audio = spec.inputs.audio ? await signer.signGet(spec.inputs.audio.object_key, { expiresInS }) : null;
	const output = await signOutputTarget(env, spec.origin, videoKey, {
		maxSize: config.maxVideoBytes,
		expiresInS,
		contentType: "video/mp4",
	});
	// With the SHA-256 `complete` recorded, so the worker runs on exactly the verified bytes or not at all.
	const verified = (ref: UploadRef) => (ref.sha256 ? { sha256: ref.sha256 } : {});
	const inputs: GpuJobInput["inputs"] = {
		image: { url: image.url, content_type: spec.inputs.image.content_type, ...verified(spec.inputs.image) },
	};
	if (audio && spec.inputs.audio) {
		inputs.audio = { url: audio.url, content_type: spec.inputs.audio.content_type, ...verified(spec.inputs.audio) };
	}
	const workflow = await jobWorkflow(env, spec);
	if (workflow) {
		// The operator's R2 copies, signed for this submission: the worker fetches only what it lacks.
		workflow.files = await Promise.all(
			workflow.files.map(async ({ r2_key, ...f }) =>
				r2_key ? { ...f, url: (await signer.signGet(r2_key, { expiresInS })).url } : f,
			),
		);
	}
	return {
		model: spec.model,
		inputs,
		params: buildParams(spec.model, spec.params, Boolean(spec.inputs.audio)),
		...(workflow ? { workflow } : {}),
		output: { content_type: "video/mp4", ...output },
	};
}

/**
 * The job's ComfyUI workflow, filled from the manifest version it recorded with the parameters it resolved at
 * creation (the same seed at every submission); undefined for a builtin model. A job from before parameters were
 * resolved at creation resolves them now from what the client sent.
 */
export async function jobWorkflow(env: Env, spec: JobSpec): Promise<FilledWorkflow | undefined> {
	const manifest = await manifestAt(env, spec.model, spec.model_version);
	if (manifest?.kind !== "comfyui") return undefined;
	let params = spec.model_params;
	if (!params) {
		const resolved = resolveParams(manifest, { ...spec.params });
		if (!resolved.ok) return undefined;
		params = resolved.params;
	}
	// Job ids are `job_` and lowercase letters and digits: safe in a file name as they are.
	return fillWorkflow(manifest, params, `video/${spec.id}`, spec.loras ?? []);
}
