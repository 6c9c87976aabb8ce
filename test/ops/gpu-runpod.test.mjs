import { spawn } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../scripts/gpu.mjs";
import { nodeBinary, ROOT } from "../../scripts/lib/paths.mjs";
import { startRunpodRest } from "../emulators/runpod-rest/server.mjs";
import { collector, startAdminRecorder } from "./helpers.mjs";

const KEY = "rp-secret-key-0123456789";
let rp;
let admin;
let env;

beforeAll(async () => {
	rp = await startRunpodRest({ apiKey: KEY });
	admin = await startAdminRecorder();
	env = { RUNPOD_API_KEY: KEY, RUNPOD_REST_URL: rp.url, REELGATE_URL: admin.url, ADMIN_TOKEN: admin.token };
});
afterAll(async () => {
	await rp.close();
	await admin.close();
});

/** Runs scripts/gpu.mjs in a child process (asynchronously: the emulators live in this process). */
function runScript(args, options) {
	return new Promise((resolve) => {
		const child = spawn(nodeBinary(), [path.join(ROOT, "scripts", "gpu.mjs"), ...args], { env: options.env });
		let stdout = "";
		let stderr = "";
		child.stdout.on("data", (c) => (stdout += c));
		child.stderr.on("data", (c) => (stderr += c));
		child.on("close", (status) => resolve({ status, stdout, stderr }));
	});
}

const run = async (argv, extraEnv = {}) => {
	const out = collector();
	const result = await main(argv, { env: { ...env, ...extraEnv }, log: out.log });
	return { result, out };
};

describe("npm run gpu -- runpod", () => {
	it("deploys volume, template and endpoint, then registers the backend", async () => {
		const { result, out } = await run([
			"runpod",
			"deploy",
			"--image",
			"ghcr.io/acme/reelgate-worker:1.0",
			"--min",
			"0",
			"--max",
			"2",
			"--price-per-second",
			"0.00076",
		]);
		const [vol] = rp.state.networkvolumes.values();
		expect(vol).toMatchObject({ name: "reelgate-models", size: 120, dataCenterId: "EU-RO-1" });
		const [tpl] = rp.state.templates.values();
		expect(tpl).toMatchObject({
			name: "reelgate-worker",
			imageName: "ghcr.io/acme/reelgate-worker:1.0",
			isServerless: true,
			containerDiskInGb: 40,
			env: { DEPLOYMENT_MODE: "serverless", ENABLED_MODELS: "preview,wan2.2-i2v,wan2.2-s2v" },
		});
		const [ep] = rp.state.endpoints.values();
		expect(ep).toMatchObject({
			name: "reelgate",
			templateId: tpl.id,
			networkVolumeId: vol.id,
			workersMin: 0,
			workersMax: 2,
			idleTimeout: 300,
			scalerType: "QUEUE_DELAY",
			scalerValue: 4,
			gpuCount: 1,
		});
		expect(ep.gpuTypeIds).toEqual(["NVIDIA H100 80GB HBM3", "NVIDIA A100 80GB PCIe", "NVIDIA H200"]);
		expect(result.endpointId).toBe(ep.id);
		const put = admin.calls.find((c) => c.method === "PUT");
		expect(put.path).toBe("/v1/admin/backends/reelgate");
		expect(put.body).toMatchObject({
			kind: "runpod",
			config: { endpoint_id: ep.id, api_key: KEY },
			price_per_second_usd: 0.00076,
		});
		expect(out.text()).not.toContain(KEY);
	});

	it("updates in place on a second deploy (no duplicates)", async () => {
		const { out } = await run([
			"runpod",
			"deploy",
			"--image",
			"ghcr.io/acme/reelgate-worker:1.1",
			"--volume-size",
			"200",
		]);
		expect(rp.state.templates.size).toBe(1);
		expect(rp.state.endpoints.size).toBe(1);
		expect(rp.state.networkvolumes.size).toBe(1);
		expect([...rp.state.templates.values()][0].imageName).toBe("ghcr.io/acme/reelgate-worker:1.1");
		expect([...rp.state.networkvolumes.values()][0].size).toBe(200);
		expect(out.text()).toMatch(/Endpoint "reelgate" updated/);
	});

	it("reports status and scales", async () => {
		await run(["runpod", "scale", "--min", "1", "--max", "4"]);
		const [ep] = rp.state.endpoints.values();
		expect(ep).toMatchObject({ workersMin: 1, workersMax: 4 });
		const { out } = await run(["runpod", "status"]);
		expect(out.text()).toMatch(/min 1, max 4, running 1/);
		await expect(run(["runpod", "scale", "--min", "5", "--max", "2"])).rejects.toThrow(/above --max/);
	});

	it("destroys endpoint and template, keeps the volume unless asked, and unregisters", async () => {
		await run(["runpod", "destroy"]);
		expect(rp.state.endpoints.size).toBe(0);
		expect(rp.state.templates.size).toBe(0);
		expect(rp.state.networkvolumes.size).toBe(1);
		expect(admin.calls.some((c) => c.method === "DELETE" && c.path === "/v1/admin/backends/reelgate")).toBe(true);
		// The endpoint was scaled to zero before it was deleted.
		const patches = rp.requests.filter((r) => r.method === "PATCH" && r.path.startsWith("/v1/endpoints/"));
		expect(patches.at(-1).body).toEqual({ workersMin: 0, workersMax: 0 });
		await run(["runpod", "destroy", "--with-volume"]);
		expect(rp.state.networkvolumes.size).toBe(0);
	});

	it("deploys a Pod in pod mode and registers it as a `pod` backend with a token it never prints", async () => {
		const { result, out } = await run(["pod", "deploy", "--name", "rg-pod", "--image", "img:1"], {
			RUNPOD_PROXY_DOMAIN: "proxy.example",
		});
		const [pod] = rp.state.pods.values();
		expect(pod).toMatchObject({
			name: "rg-pod",
			imageName: "img:1",
			ports: ["8000/http"],
			volumeMountPath: "/workspace",
		});
		expect(pod.env).toMatchObject({ DEPLOYMENT_MODE: "pod", POD_PORT: "8000" });
		expect(pod.env.POD_API_TOKEN).toMatch(/^[A-Za-z0-9_-]{32}$/);
		expect(result.url).toBe(`https://${pod.id}-8000.proxy.example`);
		const put = admin.calls.filter((c) => c.method === "PUT").at(-1);
		expect(put.body).toMatchObject({ kind: "pod", config: { url: result.url, token: pod.env.POD_API_TOKEN } });
		expect(out.text()).not.toContain(pod.env.POD_API_TOKEN);
		await run(["pod", "scale", "--name", "rg-pod", "--stop"]);
		expect(pod.desiredStatus).toBe("EXITED");
		await run(["pod", "destroy", "--name", "rg-pod"]);
		expect(rp.state.pods.size).toBe(0);
	});

	it("without REELGATE_URL it deploys and says how to register", async () => {
		const { out } = await run(["runpod", "deploy", "--name", "solo", "--image", "img:2"], { REELGATE_URL: "" });
		expect(out.text()).toMatch(/Not registered with Reelgate: set REELGATE_URL and ADMIN_TOKEN/);
	});

	it("exits non-zero with a clear message when the key is missing or wrong, never printing it", async () => {
		const missing = await runScript(["runpod", "deploy", "--image", "x"], {
			env: { PATH: process.env.PATH, RUNPOD_REST_URL: rp.url },
			encoding: "utf8",
		});
		expect(missing.status).toBe(2);
		expect(missing.stderr).toMatch(/RUNPOD_API_KEY is not set/);
		const wrong = await runScript(["runpod", "status"], {
			env: { PATH: process.env.PATH, RUNPOD_REST_URL: rp.url, RUNPOD_API_KEY: "wrong-key-abcdefgh" },
			encoding: "utf8",
		});
		expect(wrong.status).toBe(1);
		expect(wrong.stderr).toMatch(/answered 401/);
		expect(wrong.stderr).not.toContain("wrong-key-abcdefgh");
		const noImage = await runScript(["runpod", "deploy"], {
			env: { PATH: process.env.PATH, RUNPOD_REST_URL: rp.url, RUNPOD_API_KEY: KEY },
			encoding: "utf8",
		});
		expect(noImage.status).toBe(2);
		expect(noImage.stderr).toMatch(/No worker image/);
	});
});
