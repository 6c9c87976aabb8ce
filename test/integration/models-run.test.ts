// A model registered through the admin API, with a workflow that loads no weights, runs end to end on a bare
// ComfyUI (the emulator): the job carries the workflow filled from the manifest version it recorded.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { jobVideoKey } from "../../src/storage";
import still from "../data/still-video-manifest.json";
import { fakeVideo } from "../emulators/pod/server";
import { ADMIN, call, newAccount, PNG, upload } from "../helpers/api";
import { stepUntil } from "../helpers/job-object";

let auth: Record<string, string>;
let image: string;

const ended = (j: { status: string }) => j.status === "succeeded" || j.status === "failed" || j.status === "canceled";

type Graph = Record<string, { class_type: string; inputs: Record<string, unknown> }>;

async function graphOf(promptId: string): Promise<Graph> {
	const res = await fetch(`${inject("comfyEmulator").url}/_control/prompts/${promptId}/graph`);
	return ((await res.json()) as { graph: Graph }).graph;
}

async function register(manifest: unknown): Promise<void> {
	const res = await call("/v1/admin/models/still-video", {
		method: "PUT",
		headers: ADMIN,
		body: JSON.stringify(manifest),
	});
	expect([200, 201]).toContain(res.status);
}

async function run(input: Record<string, unknown>): Promise<string> {
	const res = await call("/v1/jobs", {
		method: "POST",
		headers: auth,
		body: JSON.stringify({ model: "still-video", backend: "models-run-comfy", input: { image, ...input } }),
	});
	expect(res.status).toBe(202);
	return ((await res.json()) as { id: string }).id;
}

beforeAll(async () => {
	const { url, token } = inject("comfyEmulator");
	const res = await call("/v1/admin/backends/models-run-comfy", {
		method: "PUT",
		headers: ADMIN,
		body: JSON.stringify({ kind: "comfyui", config: { url, token } }),
	});
	expect(res.status).toBe(200);
	auth = await newAccount("models-run");
	image = await upload(auth, PNG, "image/png", "still.png");
	await register(still);
});

describe("a registered ComfyUI model", () => {
	it("runs end to end: its parameters, derived values, input file and output prefix are written into its graph", async () => {
		const id = await run({ resolution: "320x192", duration_s: 1.5, fps: 10 });
		const job = await stepUntil(id, ended);
		expect(job.status).toBe("succeeded");
		const remote = job.remote_id ?? "";
		const stored = await env.BUCKET.get(jobVideoKey(job));
		expect(new Uint8Array((await stored?.arrayBuffer()) ?? new ArrayBuffer(0))).toEqual(fakeVideo(remote));
		const graph = await graphOf(remote);
		expect(graph["1"]?.inputs.image).toBe(`${id}-image.png`);
		expect(graph["2"]?.inputs).toMatchObject({ width: 320, height: 192, upscale_method: "lanczos" });
		expect(graph["3"]?.inputs.amount).toBe(15);
		expect(graph["4"]?.inputs.fps).toBe(10);
		expect(graph["5"]?.inputs.filename_prefix).toBe(`video/${id}`);
		const view = (await (await call(`/v1/jobs/${id}`, { headers: auth })).json()) as Record<string, unknown>;
		expect(view).toMatchObject({ status: "succeeded", model: "still-video", model_version: "1" });
	});

	it("a job keeps the version it was created with when a new one is registered before it runs", async () => {
		const id = await run({});
		const v2 = structuredClone(still);
		v2.version = "2";
		v2.parameters.fps.default = 12;
		await register(v2);
		const job = await stepUntil(id, ended);
		expect(job.status).toBe("succeeded");
		const graph = await graphOf(job.remote_id ?? "");
		// Version 1's defaults: 2 s at 8 fps.
		expect(graph["3"]?.inputs.amount).toBe(16);
		expect(graph["4"]?.inputs.fps).toBe(8);
		const next = await stepUntil(await run({}), ended);
		expect((await graphOf(next.remote_id ?? ""))["4"]?.inputs.fps).toBe(12);
	});
});
