/**
 * The ComfyUI workflow templates, imported from gpu-worker/workflows/*.json: the one source of truth for both the
 * GPU worker (gpu_worker/workflow.py) and the `comfyui`/`vastai` backends, so both run the same graph. Format:
 * gpu-worker/README.md, "Workflow templates". `buildWorkflow` mirrors `build_workflow` in workflow.py.
 */
import wanI2v from "../../gpu-worker/workflows/wan2.2-i2v.json";
import wanS2v from "../../gpu-worker/workflows/wan2.2-s2v.json";

export interface WorkflowTemplate {
	model: string;
	required_files: Record<string, string[]>;
	parameters: Record<string, { node: string; input: string }[]>;
	workflow: Record<string, { class_type: string; inputs: Record<string, unknown>; _meta?: unknown }>;
}

const TEMPLATES: Record<string, WorkflowTemplate> = {
	"wan2.2-i2v": wanI2v as unknown as WorkflowTemplate,
	"wan2.2-s2v": wanS2v as unknown as WorkflowTemplate,
};

/** The template for a model; undefined for models with no ComfyUI graph (the CPU `preview`). */
export function templateFor(model: string): WorkflowTemplate | undefined {
	return TEMPLATES[model];
}

export class TemplateError extends Error {}

/** The API-format graph with `params` written at their paths (a deep copy; never string replacement). */
export function buildWorkflow(
	template: WorkflowTemplate,
	params: Record<string, string | number>,
): WorkflowTemplate["workflow"] {
	const unknown = Object.keys(params).filter((k) => !(k in template.parameters));
	if (unknown.length > 0) throw new TemplateError(`unknown workflow parameters ${unknown.join(", ")}`);
	const workflow = structuredClone(template.workflow);
	for (const [name, value] of Object.entries(params)) {
		for (const target of template.parameters[name] ?? []) {
			const node = workflow[target.node];
			if (!node || !(target.input in node.inputs)) {
				throw new TemplateError(`parameter ${name}: node ${target.node} has no input ${target.input}`);
			}
			node.inputs[target.input] = value;
		}
	}
	return workflow;
}

/** Wan packs 4 frames per latent step after the first: frame counts are 4k+1 (as gpu_worker/job.py). */
export function framesFor(durationS: number, fps: number): number {
	const frames = Math.max(1, Math.round(durationS * fps));
	return Math.max(1, Math.round((frames - 1) / 4)) * 4 + 1;
}

/** The template parameters for a job's `params` (GpuJobInput), plus the uploaded input names. */
export function templateParams(
	template: WorkflowTemplate,
	params: Record<string, string | number>,
	files: { image: string; audio?: string },
	prefix: string,
): Record<string, string | number> {
	const out: Record<string, string | number> = { image: files.image, filename_prefix: prefix };
	if (files.audio && "audio" in template.parameters) out.audio = files.audio;
	for (const k of ["prompt", "negative_prompt", "width", "height", "fps", "seed", "steps"] as const) {
		if (params[k] !== undefined && k in template.parameters) out[k] = params[k];
	}
	if (out.seed === undefined && "seed" in template.parameters) out.seed = Math.floor(Math.random() * 2 ** 32);
	const fps = Number(params.fps ?? 16);
	if (params.duration_s !== undefined && "frames" in template.parameters) {
		out.frames = framesFor(Number(params.duration_s), fps);
	}
	if (out.steps !== undefined && "split_step" in template.parameters) {
		out.split_step = Math.max(1, Math.floor(Number(out.steps) / 2));
	}
	return out;
}
