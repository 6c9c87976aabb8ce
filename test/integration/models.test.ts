import { beforeAll, describe, expect, inject, it } from "vitest";
import { putPodBackend } from "../emulators/pod/harness";
import { ADMIN, call, newAccount } from "../helpers/api";

let auth: Record<string, string>;

interface ModelView {
	id: string;
	version: string;
	kind: string;
	inputs: Record<string, { required: boolean; content_types: string[] }>;
	parameters: { type: string; properties: Record<string, Record<string, unknown>>; additionalProperties: boolean };
	constraints: string[];
	limits: {
		max_duration_s: number | null;
		max_frames: number | null;
		resolution: { default: string; min_side: number; max_side: number; multiple_of: number } | null;
		loras: { max: number } | null;
	};
	available: boolean;
	accepting_jobs: boolean;
	backend_kinds: string[];
	unavailable_reason?: string;
	links: { self: string };
}

async function models(): Promise<Record<string, ModelView>> {
	const res = await call("/v1/models", { headers: auth });
	expect(res.status).toBe(200);
	const { data } = (await res.json()) as { data: ModelView[] };
	return Object.fromEntries(data.map((m) => [m.id, m]));
}

function putBackend(name: string, body: Record<string, unknown>): Promise<Response> {
	return call(`/v1/admin/backends/${name}`, { method: "PUT", headers: ADMIN, body: JSON.stringify(body) });
}

beforeAll(async () => {
	auth = await newAccount("models");
});

describe("GET /v1/models", () => {
	it("needs an API key", async () => {
		const res = await call("/v1/models");
		expect(res.status).toBe(401);
		expect(res.headers.get("content-type")).toBe("application/problem+json");
	});

	it("describes each model's inputs, parameter schema and limits, and says none is available without backends", async () => {
		const all = await models();
		expect(Object.keys(all).sort()).toEqual(["infinitetalk", "preview", "wan2.2-i2v", "wan2.2-i2v-gguf", "wan2.2-s2v"]);
		const i2v = all["wan2.2-i2v"];
		expect(i2v).toMatchObject({
			version: "1",
			kind: "comfyui",
			inputs: { image: { required: true, content_types: ["image/png", "image/jpeg", "image/webp"] } },
			limits: {
				max_duration_s: 10.06,
				max_frames: 161,
				resolution: { default: "640x640", min_side: 128, max_side: 1280, multiple_of: 16 },
				loras: { max: 3 },
			},
			available: false,
			accepting_jobs: false,
			backend_kinds: [],
			unavailable_reason: "no enabled backend serves it",
			links: { self: "http://reelgate.test/v1/models/wan2.2-i2v" },
		});
		expect(i2v?.parameters).toMatchObject({
			type: "object",
			additionalProperties: false,
			properties: {
				steps: { type: "integer", minimum: 2, maximum: 50, default: 4 },
				resolution: { type: "string", default: "640x640", "x-resolution": { multiple_of: 16, max_pixels: 921600 } },
				seed: { type: "integer", "x-random-default": true },
			},
		});
		expect(i2v?.constraints).toContain("frames (duration_s × fps, snapped to 4k+1) from 5 to 161");
		expect(all["wan2.2-s2v"]?.inputs.audio?.required).toBe(true);
		expect(all["wan2.2-s2v"]?.parameters.properties.duration_s).toMatchObject({
			"x-default-from": { input: "audio", measure: "duration_s" },
		});
		expect(all.preview?.inputs.audio?.required).toBe(false);
		expect(all.preview?.limits.loras).toBeNull();
	});

	it("marks a model available on the kinds of the healthy backends that serve it", async () => {
		expect((await putPodBackend("models-pod", { models: ["preview", "wan2.2-i2v"] })).status).toBe(200);
		const { url, token } = inject("comfyEmulator");
		expect((await putBackend("models-comfy", { kind: "comfyui", config: { url, token } })).status).toBe(200);
		const all = await models();
		expect(all.preview).toMatchObject({ available: true, accepting_jobs: true, backend_kinds: ["pod"] });
		// A ComfyUI server serves every ComfyUI model, and never the GPU worker's own preview.
		expect(all["wan2.2-i2v"]).toMatchObject({ available: true, backend_kinds: ["comfyui", "pod"] });
		expect(all["wan2.2-s2v"]).toMatchObject({ available: true, backend_kinds: ["comfyui"] });
		expect(all.preview?.unavailable_reason).toBeUndefined();
	});

	it("leaves out a backend whose last health check failed, and says why a model is then unavailable", async () => {
		expect(
			(await putBackend("models-comfy", { kind: "comfyui", config: { url: "http://127.0.0.1:9" }, enabled: true }))
				.status,
		).toBe(200);
		const test = await call("/v1/admin/backends/models-comfy/test", { method: "POST", headers: ADMIN });
		expect(((await test.json()) as { reachable: boolean }).reachable).toBe(false);
		const all = await models();
		expect(all["wan2.2-i2v"]).toMatchObject({ available: true, backend_kinds: ["pod"] });
		// Its jobs are still accepted, and wait for the backend to recover.
		expect(all["wan2.2-s2v"]).toMatchObject({
			available: false,
			accepting_jobs: true,
			unavailable_reason: "every backend that serves it is failing (circuit open) or failed its last health check",
		});
	});
});

describe("GET /v1/models/{id}", () => {
	it("answers one model, the same as in the list", async () => {
		const res = await call("/v1/models/wan2.2-s2v", { headers: auth });
		expect(res.status).toBe(200);
		const one = (await res.json()) as ModelView;
		expect(one).toEqual((await models())["wan2.2-s2v"]);
	});

	it.each(["sora", "WAN", "a%2Fb"])("answers 404 for %s", async (id) => {
		const res = await call(`/v1/models/${id}`, { headers: auth });
		expect(res.status).toBe(404);
		expect(((await res.json()) as { code: string }).code).toBe("not_found");
	});
});

describe("/openapi.json", () => {
	it("documents the catalog routes and the model schema", async () => {
		const doc = (await (await call("/openapi.json")).json()) as {
			paths: Record<string, unknown>;
			components: { schemas: Record<string, unknown> };
		};
		expect(doc.paths).toHaveProperty("/v1/models");
		expect(doc.paths).toHaveProperty("/v1/models/{id}");
		expect(doc.components.schemas).toHaveProperty("Model");
	});
});
