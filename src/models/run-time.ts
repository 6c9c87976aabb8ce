import type { JobParams } from "../jobs/record";
import type { ModelManifest } from "./manifest";

/** A number the manifest gives as a parameter's default, if it does. */
function defaultOf(manifest: ModelManifest, name: string): number | undefined {
	const param = manifest.parameters[name] as { default?: unknown } | undefined;
	return typeof param?.default === "number" ? param.default : undefined;
}

/**
 * The run time, in seconds, the model's published throughput predicts for a job: its frames (duration × fps, from
 * the request or the manifest's defaults) at the throughput's seconds per frame, scaled by pixels when the request
 * names another resolution. Undefined when the manifest publishes no throughput. Only a hint for timing the status
 * polls (src/jobs/backoff.ts), which the worker's own progress overrides once it reports one.
 */
export function expectedRunSeconds(manifest: ModelManifest, params: JobParams): number | undefined {
	const tp = manifest.throughput;
	if (!tp) return undefined;
	const fps = params.fps ?? defaultOf(manifest, "fps") ?? 16;
	const duration = params.duration_s ?? defaultOf(manifest, "duration_s") ?? 5;
	const [w, h] = (params.resolution ?? "").split("x").map(Number);
	const scale = w && h ? (w * h) / (tp.width * tp.height) : 1;
	return Math.round(Math.ceil(duration * fps) * tp.seconds_per_frame * scale * 10) / 10;
}
