import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { jobVideoKey } from "../../src/storage";
import { prompt } from "../emulators/pod/harness";
import { fakeVideo } from "../emulators/pod/server";
import { ADMIN, call, newAccount, PNG, upload } from "../helpers/api";
import { history, stepUntil } from "../helpers/job-object";

const BACKEND = "comfy-1";
let auth: Record<string, string>;
let image: string;

function comfy() {
	return inject("comfyEmulator");
}

async function control(path: string): Promise<Response> {
	return fetch(`${comfy().url}/_control${path}`);
}

beforeAll(async () => {
	const res = await call(`/v1/admin/backends/${BACKEND}`, {
		method: "PUT",
		headers: ADMIN,
		body: JSON.stringify({
			kind: "comfyui",
			price_per_second_usd: 0.0002,
			// An 80 GB card: the fp8 Wan models need 48 GB (routing reads the GPU the health check reports).
			config: { url: `${comfy().url}/h100`, token: comfy().token, timeout_ms: 1000 },
		}),
	});
	expect(res.status).toBe(200);
	auth = await newAccount("comfy");
	image = await upload(auth, PNG, "image/png", "fox.png");
});

async function startJob(text: string, model = "wan2.2-i2v"): Promise<string> {
	const res = await call("/v1/jobs", {
		method: "POST",
		headers: auth,
		body: JSON.stringify({ model, backend: BACKEND, input: { image, prompt: text, duration_s: 2 } }),
	});
	expect(res.status).toBe(202);
	return ((await res.json()) as { id: string }).id;
}

const stepsOf = async (id: string) => (await history(id)).map((h) => h.event);
const ended = (j: { status: string }) => j.status === "succeeded" || j.status === "failed" || j.status === "canceled";

describe("comfyui backend", () => {
	it("test reports the GPU, version and queue depth; the token is never returned", async () => {
		const res = await call(`/v1/admin/backends/${BACKEND}/test`, { method: "POST", headers: ADMIN });
		const health = (await res.json()) as { reachable: boolean; details: Record<string, unknown> };
		expect(health.reachable).toBe(true);
		expect(health.details).toMatchObject({ comfyui_version: "0.38.1", queue_depth: expect.any(Number) });
		expect(JSON.stringify(health.details.gpus)).toContain("H100 80GB");
		const list = await (await call("/v1/admin/backends", { headers: ADMIN })).text();
		expect(list).not.toContain(comfy().token);
	});

	it("uploads the input, queues the template with parameters, follows the history and stores the video", async () => {
		const id = await startJob(prompt());
		const job = await stepUntil(id, ended);
		expect(job.status).toBe("succeeded");
		const remote = job.remote_id ?? "";
		expect(remote).toMatch(/^[0-9a-f-]{36}$/);
		const stored = await env.BUCKET.get(jobVideoKey(job));
		expect(new Uint8Array((await stored?.arrayBuffer()) ?? new ArrayBuffer(0))).toEqual(fakeVideo(remote));
		expect(job.cost).toEqual({ gpu_seconds: 4.2, usd: Math.round(4.2 * 0.0002 * 1e6) / 1e6 });
		// The i2v template (gpu-worker/workflows/wan2.2-i2v.json) with the job's parameters written in.
		const { graph } = (await (await control(`/prompts/${remote}/graph`)).json()) as {
			graph: Record<string, { inputs: Record<string, unknown> }>;
		};
		expect(graph["8"]?.inputs.text).toBe(job.spec.params.prompt);
		expect(graph["11"]?.inputs.image).toBe(`${id}-image.png`);
		expect(graph["12"]?.inputs).toMatchObject({ width: 640, height: 640, length: 33 });
		expect(graph["17"]?.inputs.filename_prefix).toBe(`video/${id}`);
	});

	it("a submit whose answer was lost is followed on the retry, not queued a second time", async () => {
		// ComfyUI queues the prompt, but its answer never comes (the Worker gives up after timeout_ms).
		const id = await startJob(prompt("prompt=timeout"));
		const job = await stepUntil(id, ended);
		expect(job.status).toBe("succeeded");
		expect(job.attempts).toBe(1);
		const history = await stepsOf(id);
		expect(history).toContain("retry");
		const seen = (await (await control(`/prompts/${job.remote_id}`)).json()) as { posted: number };
		expect(seen.posted).toBe(1);
	});

	it("a /view that never answers is given up after the call timeout, not the download budget, and retried", async () => {
		const id = await startJob(prompt("view=timeout"));
		const started = Date.now();
		const job = await stepUntil(id, ended);
		expect(job.status).toBe("succeeded");
		// timeout_ms is 1 s here; the download budget (10 min) would have failed the test's own timeout first.
		expect(Date.now() - started).toBeLessThan(20_000);
		const changes = await history(id);
		expect(changes.map((h) => h.detail ?? "")).toContain("Status: the backend timed out.");
	});

	it("a video sent without a content-length goes to R2 as a multipart upload", async () => {
		const id = await startJob(prompt("chunked"));
		const job = await stepUntil(id, ended);
		expect(job.status).toBe("succeeded");
		expect(job.output?.video.size).toBe(fakeVideo(job.remote_id ?? "").byteLength);
	});

	it("a workflow ComfyUI refuses (400 node_errors) fails with the node named", async () => {
		const id = await startJob(prompt("reject"));
		const job = await stepUntil(id, ended);
		expect(job.status).toBe("failed");
		expect(job.error?.message).toMatch(/node 11 LoadImage: image: .* not in list/);
	});

	it("an execution_error fails the job with ComfyUI's message, no traceback", async () => {
		const id = await startJob(prompt("error"));
		const job = await stepUntil(id, ended);
		expect(job.error).toEqual({ code: "inference_failed", message: "Allocation on device in KSamplerAdvanced" });
	});

	it("a prompt ComfyUI forgot (restart) is resubmitted", async () => {
		const id = await startJob(prompt("vanish"));
		const job = await stepUntil(id, ended, 20);
		// The fault follows the prompt text, so every submission vanishes: the job gives up after its attempts.
		expect(job.status).toBe("failed");
		expect(job.error?.code).toBe("lost");
		expect(job.attempts).toBe(3);
	});

	it("the preview model is not routed to ComfyUI", async () => {
		const res = await call("/v1/jobs", {
			method: "POST",
			headers: auth,
			body: JSON.stringify({ model: "preview", backend: BACKEND, input: { image, prompt: "x" } }),
		});
		expect(res.status).toBe(409);
	});

	it("cancel removes a queued prompt and interrupts a running one", async () => {
		const id = await startJob(prompt("slow=5"));
		const queued = await stepUntil(id, (j) => j.remote_id !== null);
		expect((await call(`/v1/jobs/${id}/cancel`, { method: "POST", headers: auth })).status).toBe(200);
		expect((await control(`/prompts/${queued.remote_id}`)).status).toBe(404);
	});
});
