#!/usr/bin/env node
// The GPU proof's section of BENCHMARKS.md: Wan 2.2 i2v and s2v on a real GPU with random-weight checkpoints
// (gpu-worker/scripts/gpu-proof, gpu-worker/README.md "GPU proof"). It needs a GPU, so `npm run bench` does not run
// it: it prints the figures of the last GPU run, committed as gpu-worker/gpu-proof-report.json, or says that they
// await one. Usage: node bench/gpu-proof.mjs
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
const reportPath = path.join(root, "gpu-worker", "gpu-proof-report.json");
const COMMAND =
	"gpu-worker/scripts/gpu-proof --comfy-dir /comfyui --models /workspace/gpu-proof-models --report gpu-worker/gpu-proof-report.json";

const lines = ["## GPU proof: Wan 2.2 on a GPU, random weights", ""];
lines.push(
	"The whole wan path (ComfyUI's loaders, both i2v experts, the s2v sampler, VAE decode, encoding, upload, progress)",
	"with checkpoints of the real files' names, tensor names, shapes and dtypes but random values: sampling time does",
	"not depend on the values. i2v: 640×640, 81 frames, 4 steps; s2v: 640×640, 81 frames, 4 steps, 5 s of audio.",
	"",
);
if (!existsSync(reportPath)) {
	lines.push(
		"**No figures yet: they await a run on a machine with a GPU.** On that machine, with torch and a ComfyUI v0.8.0",
		"checkout whose requirements are installed (the worker's image has both: there the script is",
		"`/app/scripts/gpu-proof`), from the repository root:",
		"",
		`    ${COMMAND}`,
		"",
		"then commit `gpu-worker/gpu-proof-report.json` and re-run `npm run bench`. Checked without a GPU so far: the",
		"arguments, the full-scale layouts (i2v experts 14.5 GB each, s2v 18.5 GB, umt5 6.7 GB, VAE 0.25 GB, wav2vec2",
		"0.63 GB, LoRAs 0.61 GB), a tiny-scale build that ComfyUI's loaders detect as Wan 2.2 i2v, S2V, the Wan VAE and",
		"wav2vec2, and the worker starting ComfyUI `--cpu` and passing its health check on those files.",
	);
} else {
	const report = JSON.parse(readFileSync(reportPath, "utf8"));
	lines.push(`Measured on ${report.gpu} (scale ${report.scale}).`, "");
	lines.push("| job | status | load (s) | s/step | steps | total (s) | peak VRAM (GiB) | video bytes | sha256 |");
	lines.push("|---|---|---:|---:|---:|---:|---:|---:|---|");
	const cell = (v) => (v === null || v === undefined ? "n/a" : String(v));
	for (const j of report.jobs) {
		lines.push(
			`| ${j.model} | ${j.status} | ${cell(j.load_s)} | ${cell(j.s_per_step)} | ${j.steps} | ${j.total_s} | ${cell(j.peak_vram_gib)} | ${j.video_bytes} | ${j.video_sha256_ok ? "ok" : "MISMATCH"} |`,
		);
	}
	lines.push("", `Re-measure: \`${COMMAND}\``);
}
console.log(lines.join("\n"));
