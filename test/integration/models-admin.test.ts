import { beforeAll, describe, expect, inject, it } from "vitest";
import still from "../data/still-video-manifest.json";
import { putPodBackend } from "../emulators/pod/harness";
import { ADMIN, call, newAccount, PNG, upload } from "../helpers/api";
import { stepUntil } from "../helpers/job-object";

let auth: Record<string, string>;

interface Problem {
	status: number;
	code: string;
	detail: string;
	errors?: { path: string; message: string }[];
}

interface AdminModel {
	manifest: { id: string; version: string; description: string };
	source: string;
	retired_at: string | null;
	versions: { version: string; digest: string; source: string }[];
}

interface Report {
	ok: boolean;
	version: string;
	problems: { node: string; class_type: string; input?: string; rule: string; detail: string }[];
	missing_files: { folder: string; name: string }[];
	missing_nodes: { class_type: string; repository: string | null; commit: string | null }[];
}

const manifest = (over: Record<string, unknown> = {}) => ({ ...structuredClone(still), ...over });

function put(id: string, body: unknown): Promise<Response> {
	return call(`/v1/admin/models/${id}`, { method: "PUT", headers: ADMIN, body: JSON.stringify(body) });
}

function validate(id: string, body: unknown): Promise<Response> {
	return call(`/v1/admin/models/${id}/validate`, { method: "POST", headers: ADMIN, body: JSON.stringify(body) });
}

beforeAll(async () => {
	auth = await newAccount("models-admin");
	const { url, token } = inject("comfyEmulator");
	const res = await call("/v1/admin/backends/admin-models-comfy", {
		method: "PUT",
		headers: ADMIN,
		body: JSON.stringify({ kind: "comfyui", config: { url, token } }),
	});
	expect(res.status).toBe(200);
});

describe("PUT /v1/admin/models/{id}", () => {
	it("needs the admin token", async () => {
		const res = await call("/v1/admin/models/still-video", {
			method: "PUT",
			headers: auth,
			body: JSON.stringify(manifest()),
		});
		expect(res.status).toBe(401);
	});

	it("registers a model from its manifest, which then shows in the catalog with its parameters", async () => {
		const res = await put("still-video", manifest());
		expect(res.status).toBe(201);
		const body = (await res.json()) as AdminModel;
		expect(body).toMatchObject({
			manifest: { id: "still-video", version: "1" },
			source: "registered",
			retired_at: null,
		});
		expect(body.versions.map((v) => v.version)).toEqual(["1"]);

		const listed = await call("/v1/models/still-video", { headers: auth });
		expect(listed.status).toBe(200);
		expect(await listed.json()).toMatchObject({
			id: "still-video",
			version: "1",
			kind: "comfyui",
			inputs: { image: { required: true } },
			parameters: { properties: { fps: { type: "integer", minimum: 1, maximum: 30, default: 8 } } },
			limits: { max_frames: 240, resolution: { default: "256x256", max_side: 1024 } },
		});
	});

	it("keeps every version: the same one again is a 200, other content under it a 409, a new one a 201", async () => {
		expect((await put("still-video", manifest())).status).toBe(200);
		const changed = await put("still-video", manifest({ description: "Something else entirely." }));
		expect(changed.status).toBe(409);
		expect(((await changed.json()) as Problem).detail).toContain("give this manifest a new version");

		const v2 = await put("still-video", manifest({ version: "2", description: "The second version." }));
		expect(v2.status).toBe(201);
		const got = (await (await call("/v1/admin/models/still-video", { headers: ADMIN })).json()) as AdminModel;
		expect(got.manifest.version).toBe("2");
		expect(got.versions.map((v) => v.version)).toEqual(["1", "2"]);
		expect(got.versions.every((v) => /^[0-9a-f]{64}$/.test(v.digest))).toBe(true);
		// Going back to version 1 is registering it again, unchanged.
		expect((await put("still-video", manifest())).status).toBe(200);
		const models = (await (await call("/v1/models/still-video", { headers: auth })).json()) as { version: string };
		expect(models.version).toBe("1");
	});

	it("refuses a shipped model's version with other content", async () => {
		const res = await call("/v1/admin/models/preview", { headers: ADMIN });
		const shipped = ((await res.json()) as AdminModel & { manifest: Record<string, unknown> }).manifest;
		const edited = await put("preview", { ...shipped, description: "Edited." });
		expect(edited.status).toBe(409);
	});

	it("refuses a manifest whose id is not the path's, naming the field", async () => {
		const res = await put("other-name", manifest());
		expect(res.status).toBe(400);
		const problem = (await res.json()) as Problem;
		expect(problem.errors).toEqual([{ path: "json.id", message: 'must be "other-name", the id in the path' }]);
	});

	it.each([
		[
			"a binding to a node the graph lacks",
			{ inputs: { image: { required: true, description: "x", bind: [{ node: "99", input: "image" }] } } },
			"no node 99 in the workflow",
		],
		["a comfyui model without its workflow", { workflow: undefined }, "a comfyui model needs its workflow"],
		["an unknown field", { colour: "red" }, "colour"],
	])("refuses %s with a problem naming it", async (_what, over, expected) => {
		const res = await put("still-video", manifest({ version: "bad", ...over }));
		expect(res.status).toBe(400);
		const problem = (await res.json()) as Problem;
		expect(JSON.stringify(problem.errors)).toContain(expected);
	});
});

describe("POST /v1/admin/models/{id}/validate", () => {
	it("finds a workflow of core nodes that loads no weights runnable on the ComfyUI server", async () => {
		const res = await validate("still-video", { backend: "admin-models-comfy" });
		expect(res.status).toBe(200);
		const report = (await res.json()) as Report;
		expect(report).toMatchObject({ ok: true, problems: [], missing_files: [], missing_nodes: [] });
	});

	it("lists the weight files the server lacks for wan2.2-i2v", async () => {
		const report = (await (await validate("wan2.2-i2v", { backend: "admin-models-comfy" })).json()) as Report;
		expect(report.ok).toBe(false);
		expect(report.missing_files.map((f) => `${f.folder}/${f.name}`)).toEqual(
			expect.arrayContaining(["vae/wan_2.1_vae.safetensors", "text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors"]),
		);
		expect(report.missing_nodes).toEqual([]);
	});

	it("checks a candidate manifest before it is registered: unknown nodes with their repository, bad inputs, ranges", async () => {
		const candidate = manifest({ version: "3" }) as typeof still & Record<string, unknown>;
		candidate.workflow.graph["3"] = { class_type: "RepeatFrames", inputs: { image: ["2", 0], amount: 16 } } as never;
		candidate.custom_nodes = [
			{ repository: "https://github.com/example/frames", commit: "0".repeat(40), nodes: ["RepeatFrames"] },
		];
		(candidate.workflow.graph["2"].inputs as Record<string, unknown>).crop = "sideways";
		candidate.parameters.fps.maximum = 500;
		const res = await validate("still-video", { backend: "admin-models-comfy", manifest: candidate });
		expect(res.status).toBe(200);
		const report = (await res.json()) as Report;
		expect(report.ok).toBe(false);
		expect(report.version).toBe("3");
		expect(report.missing_nodes).toEqual([
			{ class_type: "RepeatFrames", repository: "https://github.com/example/frames", commit: "0".repeat(40) },
		]);
		expect(report.problems).toEqual(
			expect.arrayContaining([
				expect.objectContaining({ node: "2", input: "crop", rule: "not_in_list" }),
				expect.objectContaining({
					node: "4",
					input: "fps",
					rule: "above_max",
					detail: "parameter fps allows 500; the node's maximum is 120",
				}),
			]),
		);
		// Checking it registered nothing.
		const current = (await (await call("/v1/admin/models/still-video", { headers: ADMIN })).json()) as AdminModel;
		expect(current.versions.map((v) => v.version)).not.toContain("3");
	});

	it("answers 409 for a backend that has no /object_info, and 400 for one that does not exist", async () => {
		expect((await putPodBackend("admin-models-pod", {})).status).toBe(200);
		const pod = await validate("still-video", { backend: "admin-models-pod" });
		expect(pod.status).toBe(409);
		expect(((await pod.json()) as Problem).detail).toContain("/object_info of a comfyui backend or a vast.ai instance");
		const none = await validate("still-video", { backend: "no-such-backend" });
		expect(none.status).toBe(400);
		expect(((await none.json()) as Problem).errors).toEqual([{ path: "json.backend", message: "unknown backend" }]);
	});

	it("checks a vast.ai backend's running instance, and says when none is up", async () => {
		const { url, apiKey } = inject("vastEmulator");
		const put = await call("/v1/admin/backends/admin-models-vast", {
			method: "PUT",
			headers: ADMIN,
			body: JSON.stringify({
				kind: "vastai",
				config: { api_key: apiKey, base_url: url, max_dph_usd: 0.5, min_reliability: 0.99, idle_destroy_s: 3600 },
			}),
		});
		expect(put.status).toBe(200);
		const none = await validate("still-video", { backend: "admin-models-vast" });
		expect(none.status).toBe(409);
		expect(((await none.json()) as Problem).detail).toBe(
			'Backend "admin-models-vast" has no vast.ai instance up: its ComfyUI can be checked while one runs.',
		);
		// A job rents an instance and runs there; the instance's ComfyUI is then what the check reads.
		const image = await upload(auth, PNG, "image/png", "still.png");
		const res = await call("/v1/jobs", {
			method: "POST",
			headers: auth,
			body: JSON.stringify({ model: "still-video", backend: "admin-models-vast", input: { image } }),
		});
		expect(res.status).toBe(202);
		const job = await stepUntil(((await res.json()) as { id: string }).id, (j) => j.status === "succeeded", 20);
		expect(job.status).toBe("succeeded");
		const report = await validate("still-video", { backend: "admin-models-vast" });
		expect(report.status).toBe(200);
		expect(await report.json()).toMatchObject({ ok: true, backend: "admin-models-vast", missing_files: [] });
	});

	it("answers 503 when the backend cannot be reached", async () => {
		await call("/v1/admin/backends/admin-models-down", {
			method: "PUT",
			headers: ADMIN,
			body: JSON.stringify({ kind: "comfyui", config: { url: "http://127.0.0.1:9", token: "t" } }),
		});
		const res = await validate("still-video", { backend: "admin-models-down" });
		expect(res.status).toBe(503);
	});
});

describe("DELETE /v1/admin/models/{id}", () => {
	it("retires a model: it leaves the catalog, and registering a version again brings it back", async () => {
		const res = await call("/v1/admin/models/still-video", { method: "DELETE", headers: ADMIN });
		expect(res.status).toBe(204);
		expect((await call("/v1/models/still-video", { headers: auth })).status).toBe(404);
		const again = await call("/v1/admin/models/still-video", { method: "DELETE", headers: ADMIN });
		expect(again.status).toBe(404);
		const admin = (await (await call("/v1/admin/models/still-video", { headers: ADMIN })).json()) as AdminModel;
		expect(admin.retired_at).not.toBeNull();
		expect((await put("still-video", manifest())).status).toBe(200);
		expect((await call("/v1/models/still-video", { headers: auth })).status).toBe(200);
	});
});
