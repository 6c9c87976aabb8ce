import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { findVideo } from "../../src/backends/comfyui";
import { base64DecodedSize } from "../../src/backends/inline-video";
import { parseRemoteError } from "../../src/backends/remote-error";
import { interpretRunpodJob } from "../../src/backends/runpod";
import { runpodWebhookToken, verifyRunpodWebhookToken } from "../../src/backends/webhook-token";
import { buildWorkflow, framesFor, templateFor, templateParams } from "../../src/backends/workflows";

describe("runpod job objects", () => {
	const inline = { bucket: env.BUCKET, key: "outputs/acct/job_adapters/att_1/video.mp4", maxBytes: 1024 };
	const interpret = (body: unknown) => interpretRunpodJob(body, inline);
	it.each([
		[{ id: "a", status: "IN_QUEUE" }, { state: "queued" }],
		[
			{ id: "a", status: "IN_PROGRESS", output: { progress: { percent: 42, stage: "sampling" } } },
			{ state: "running", progress: { percent: 42, stage: "sampling" } },
		],
		[{ id: "a", status: "CANCELLED" }, { state: "canceled" }],
		[
			{ id: "a", status: "TIMED_OUT", executionTime: 600000 },
			{ state: "failed", error: { code: "timeout" }, executionMs: 600000 },
		],
		[
			{ id: "a", status: "FAILED", error: "boom" },
			{ state: "failed", error: { code: "inference_failed", message: "boom" } },
		],
		[
			{ id: "a", status: "COMPLETED", executionTime: 1437, output: { video: { size: 10, sha256: "ab" } } },
			{ state: "completed", executionMs: 1437, output: { size: 10 } },
		],
		[
			{ id: "a", status: "COMPLETED" },
			{ state: "failed", error: { code: "output_missing" } },
		],
	])("%j", async (body, expected) => {
		expect(await interpret(body)).toMatchObject({ ok: true, ...expected });
	});

	it("an unknown status is transient, not a crash", async () => {
		expect(await interpret({ status: "WEIRD" })).toMatchObject({ ok: false, reason: "bad_answer" });
	});

	it("an uncaught exception keeps its message and drops the traceback and hostname", () => {
		const err = JSON.stringify({
			error_type: "X",
			error_message: "CUDA out of memory",
			error_traceback: "Traceback…",
			hostname: "worker-7f3a",
		});
		expect(parseRemoteError(err)).toEqual({ code: "inference_failed", message: "CUDA out of memory" });
	});

	it.each([
		[
			JSON.stringify({
				code: "invalid_input",
				message: "inputs.image: cannot identify image file '/tmp/reelgate-x/image.png'",
			}),
			"inputs.image: cannot identify image file",
		],
		[
			JSON.stringify({ error_type: "OSError", error_message: "No such file: /runpod-volume/models/wan.safetensors" }),
			"No such file:",
		],
		[
			"fetch https://bucket.r2.example/in/a.png?X-Amz-Signature=abc&token=t failed",
			"fetch https://bucket.r2.example/in/a.png failed",
		],
	])("a remote message reaches the job without a path of the worker or a signed query", (raw, shown) => {
		expect(parseRemoteError(raw).message).toBe(shown);
	});

	// The GPU worker's codes (gpu-worker/gpu_worker/errors.py), each in the string form RunPod declares and in the
	// object form older workers sent; the Worker's resubmission rule needs the transfer codes to survive.
	const WORKER_CODES = (
		"invalid_input input_download_failed input_changed models_missing inference_failed output_upload_failed output_too_large " +
		"timeout canceled internal"
	).split(" ");
	it.each(WORKER_CODES)("FAILED with %s keeps its code in the string and in the legacy object form", async (code) => {
		const error = { code, message: `failed with ${code}` };
		for (const form of [JSON.stringify(error), error]) {
			expect(await interpret({ id: "a", status: "FAILED", executionTime: 9, error: form })).toEqual({
				ok: true,
				state: "failed",
				error,
				executionMs: 9,
				delayMs: undefined,
			});
		}
	});
});

describe("webhook tokens", () => {
	it("are per job and per secret", async () => {
		const t = await runpodWebhookToken("secret", "job_a");
		expect(await verifyRunpodWebhookToken("secret", "job_a", t)).toBe(true);
		expect(await verifyRunpodWebhookToken("secret", "job_b", t)).toBe(false);
		expect(await verifyRunpodWebhookToken("other", "job_a", t)).toBe(false);
	});
});

describe("inline video size", () => {
	it("counts padding and refuses non-base64", () => {
		expect(base64DecodedSize("AAAA")).toBe(3);
		expect(base64DecodedSize("AAA=")).toBe(2);
		expect(base64DecodedSize("AA==")).toBe(1);
		expect(base64DecodedSize("A*==")).toBeNull();
		expect(base64DecodedSize("AAA")).toBeNull();
	});
});

describe("workflow templates (shared with the GPU worker)", () => {
	it("frames are 4k+1 like gpu_worker/job.py", () => {
		expect(framesFor(5, 16)).toBe(81);
		expect(framesFor(2, 16)).toBe(33);
	});

	it("writes parameters at every path and refuses unknown ones", () => {
		const t = templateFor("wan2.2-i2v");
		if (!t) throw new Error("no template");
		const params = templateParams(t, { prompt: "p", steps: 8, seed: 7, duration_s: 5 }, { image: "i.png" }, "video/j");
		const wf = buildWorkflow(t, params);
		expect(wf["13"]?.inputs).toMatchObject({ noise_seed: 7, steps: 8, end_at_step: 4 });
		expect(wf["14"]?.inputs).toMatchObject({ noise_seed: 7, steps: 8, start_at_step: 4 });
		expect(wf["12"]?.inputs.length).toBe(81);
		expect(t.workflow["8"]?.inputs.text).not.toBe("p");
		expect(() => buildWorkflow(t, { nope: 1 })).toThrow(/unknown workflow parameters/);
		expect(templateFor("preview")).toBeUndefined();
	});
});

describe("ComfyUI outputs", () => {
	it("finds SaveVideo's mp4 under images, VHS's under gifs, and skips temp files", () => {
		expect(
			findVideo({
				"17": { images: [{ filename: "a_00001_.mp4", subfolder: "video", type: "output" }], animated: [true] },
			}),
		).toEqual({ filename: "a_00001_.mp4", subfolder: "video", type: "output" });
		expect(
			findVideo({ "9": { gifs: [{ filename: "b.mp4", subfolder: "", type: "output", format: "video/h264-mp4" }] } })
				?.filename,
		).toBe("b.mp4");
		expect(findVideo({ "9": { images: [{ filename: "c.mp4", subfolder: "", type: "temp" }] } })).toBeUndefined();
		expect(findVideo({ "9": { images: [{ filename: "d.png", subfolder: "", type: "output" }] } })).toBeUndefined();
	});
});
