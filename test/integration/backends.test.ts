import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { pod, putPodBackend } from "../emulators/pod/harness";
import { ADMIN, call } from "../helpers/api";

function put(name: string, body: unknown) {
	return call(`/v1/admin/backends/${name}`, { method: "PUT", headers: ADMIN, body: JSON.stringify(body) });
}

describe("admin backends", () => {
	it("stores a pod backend with its token write-only and encrypted", async () => {
		const res = await putPodBackend("gpu-1", { models: ["preview", "wan2.2-i2v"], max_concurrency: 2 });
		expect(res.status).toBe(200);
		const text = await res.text();
		expect(text).not.toContain(pod().token);
		const backend = JSON.parse(text) as Record<string, unknown>;
		expect(backend).toMatchObject({
			name: "gpu-1",
			kind: "pod",
			enabled: true,
			priority: 10,
			models: ["preview", "wan2.2-i2v"],
			max_concurrency: 2,
			config: { url: pod().url, token_set: true, timeout_ms: 500 },
			last_health: null,
		});
		const row = await env.DB.prepare("SELECT config, secrets FROM backends WHERE name = 'gpu-1'").first<{
			config: string;
			secrets: string;
		}>();
		expect(row?.config).not.toContain(pod().token);
		expect(row?.secrets).toMatch(/^v1\./);
		expect(row?.secrets).not.toContain(pod().token);

		const list = await call("/v1/admin/backends", { headers: ADMIN });
		const listText = await list.text();
		expect(listText).toContain("gpu-1");
		expect(listText).not.toContain(pod().token);
	});

	it("never logs a secret", async () => {
		const lines: string[] = [];
		const capture = (...args: unknown[]) => {
			lines.push(args.map(String).join(" "));
		};
		const spies = [
			vi.spyOn(console, "log").mockImplementation(capture),
			vi.spyOn(console, "warn").mockImplementation(capture),
			vi.spyOn(console, "error").mockImplementation(capture),
		];
		try {
			await putPodBackend("gpu-logged");
			await call("/v1/admin/backends/gpu-logged/test", { method: "POST", headers: ADMIN });
			await call("/v1/admin/backends", { headers: ADMIN });
		} finally {
			for (const spy of spies) spy.mockRestore();
		}
		expect(lines.length).toBeGreaterThan(0);
		expect(lines.join("\n")).not.toContain(pod().token);
	});

	it("keeps a secret left out of an update, clears it with null", async () => {
		expect((await putPodBackend("gpu-2")).status).toBe(200);
		const kept = await put("gpu-2", { kind: "pod", config: { url: pod().url } });
		expect(((await kept.json()) as { config: { token_set: boolean } }).config.token_set).toBe(true);
		const test = (await (await call("/v1/admin/backends/gpu-2/test", { method: "POST", headers: ADMIN })).json()) as {
			reachable: boolean;
		};
		expect(test.reachable).toBe(true);
		const cleared = await put("gpu-2", { kind: "pod", config: { url: pod().url, token: null } });
		expect(((await cleared.json()) as { config: { token_set: boolean } }).config.token_set).toBe(false);
		// Without the token the emulator refuses: the health check says so.
		const failing = (await (
			await call("/v1/admin/backends/gpu-2/test", { method: "POST", headers: ADMIN })
		).json()) as {
			reachable: boolean;
			details: { status: number };
		};
		expect(failing).toMatchObject({ reachable: false, details: { status: 401 } });
	});

	it("tests a backend: reachable with latency and the worker's health, recorded as last_health", async () => {
		expect((await putPodBackend("gpu-3")).status).toBe(200);
		const res = await call("/v1/admin/backends/gpu-3/test", { method: "POST", headers: ADMIN });
		expect(res.status).toBe(200);
		const body = (await res.json()) as { reachable: boolean; latency_ms: number; details: { workers: unknown } };
		expect(body.reachable).toBe(true);
		expect(body.latency_ms).toBeGreaterThanOrEqual(0);
		expect(body.details.workers).toBeDefined();
		const list = (await (await call("/v1/admin/backends", { headers: ADMIN })).json()) as {
			data: { name: string; last_health: { reachable: boolean } | null }[];
		};
		expect(list.data.find((b) => b.name === "gpu-3")?.last_health?.reachable).toBe(true);
	});

	it("reports an unreachable backend without failing", async () => {
		// A closed loopback port: the connection is refused (workerd logs the lost connection; the route answers).
		expect((await put("dead", { kind: "pod", config: { url: "http://127.0.0.1:9", timeout_ms: 300 } })).status).toBe(
			200,
		);
		const body = (await (await call("/v1/admin/backends/dead/test", { method: "POST", headers: ADMIN })).json()) as {
			reachable: boolean;
		};
		expect(body.reachable).toBe(false);
	});

	it("accepts the other kinds' configs, secrets hidden", async () => {
		const runpod = await put("rp", { kind: "runpod", config: { endpoint_id: "abc123", api_key: "rp-secret-key" } });
		expect(runpod.status).toBe(200);
		const text = await runpod.text();
		expect(text).not.toContain("rp-secret-key");
		expect(JSON.parse(text)).toMatchObject({ kind: "runpod", config: { endpoint_id: "abc123", api_key_set: true } });
		// A closed loopback port as vast.ai's API: the test never leaves the machine.
		const vast = await put("vast", {
			kind: "vastai",
			config: { api_key: "vast-secret", gpu: "RTX_4090", base_url: "http://127.0.0.1:9" },
		});
		expect(vast.status).toBe(200);
		expect(await vast.text()).not.toContain("vast-secret");
		// Each kind has its own tests (backends-runpod, -comfyui, -vastai); here: an unreachable API is reported.
		const test = (await (await call("/v1/admin/backends/vast/test", { method: "POST", headers: ADMIN })).json()) as {
			reachable: boolean;
			details: { error: string };
		};
		expect(test.reachable).toBe(false);
		expect(test.details.error).toMatch(/could not be reached/);
	});

	it.each([
		["an unknown kind", { kind: "lambda", config: {} }, "json.kind"],
		["a pod without url", { kind: "pod", config: {} }, "json.config.url"],
		["a non-http url", { kind: "pod", config: { url: "ftp://x" } }, "json.config.url"],
		["a runpod without api_key", { kind: "runpod", config: { endpoint_id: "e1" } }, "json.config.api_key"],
		[
			"a negative price",
			{ kind: "pod", price_per_second_usd: -1, config: { url: "http://x.test" } },
			"json.price_per_second_usd",
		],
	])("refuses %s", async (_name, body, path) => {
		const res = await put("bad", body);
		expect(res.status).toBe(400);
		const p = (await res.json()) as { code: string; errors: { path: string }[] };
		expect(p.code).toBe("invalid_request");
		expect(p.errors.map((e) => e.path)).toContain(path);
	});

	it("deletes, then 404s; needs the admin token", async () => {
		expect((await putPodBackend("gone")).status).toBe(200);
		expect((await call("/v1/admin/backends/gone", { method: "DELETE", headers: ADMIN })).status).toBe(204);
		expect((await call("/v1/admin/backends/gone", { method: "DELETE", headers: ADMIN })).status).toBe(404);
		expect((await call("/v1/admin/backends/gone/test", { method: "POST", headers: ADMIN })).status).toBe(404);
		expect((await call("/v1/admin/backends")).status).toBe(401);
		expect((await call("/v1/admin/backends/x", { method: "PUT", body: "{}" })).status).toBe(401);
	});
});
