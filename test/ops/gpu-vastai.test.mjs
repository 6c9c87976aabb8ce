import { createServer } from "node:http";
import { afterAll, beforeAll, expect, it } from "vitest";
import { main } from "../../scripts/gpu.mjs";
import { collector, startAdminRecorder } from "./helpers.mjs";

// A minimal vast.ai stand-in: POST /api/v0/template/ → {template}, PUT /api/v0/asks/{id}/ → {new_contract},
// GET/DELETE /api/v0/instances/{id}/ (shapes from https://docs.vast.ai/api-reference/introduction).
const KEY = "vast-secret-key-123456";
let vast;
let admin;
const calls = [];
const instances = new Map();

beforeAll(async () => {
	admin = await startAdminRecorder();
	const server = createServer(async (req, res) => {
		const chunks = [];
		for await (const c of req) chunks.push(c);
		const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined;
		calls.push({ method: req.method, url: req.url, body });
		const send = (s, b) => {
			res.writeHead(s, { "content-type": "application/json" });
			res.end(JSON.stringify(b));
		};
		if (req.headers.authorization !== `Bearer ${KEY}`) return send(401, { error: "unauthorized" });
		if (req.method === "POST" && req.url === "/api/v0/template/")
			return send(200, { success: true, template: { id: 7, hash_id: "abc123", ...body } });
		const ask = /^\/api\/v0\/asks\/(\d+)\/$/.exec(req.url);
		if (req.method === "PUT" && ask) {
			instances.set("991", {
				id: 991,
				label: body.label,
				actual_status: "running",
				public_ipaddr: "203.0.113.9",
				ports: { "8000/tcp": [{ HostIp: "0.0.0.0", HostPort: "41000" }] },
				dph_total: 0.9,
				gpu_name: "A100",
			});
			return send(200, { success: true, new_contract: 991 });
		}
		const inst = /^\/api\/v0\/instances\/(\d+)\/(\?owner=me)?$/.exec(req.url);
		if (inst && req.method === "GET") return send(200, { instances: instances.get(inst[1]) ?? null });
		if (inst && req.method === "DELETE") {
			instances.delete(inst[1]);
			return send(200, { success: true });
		}
		send(404, { error: "not found" });
	});
	await new Promise((r) => server.listen(0, "127.0.0.1", r));
	vast = { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
});
afterAll(async () => {
	await vast.close();
	await admin.close();
});

it("vast.ai: template with pod-mode env and onstart, an instance from an offer, registered as a pod backend", async () => {
	const out = collector();
	const env = { VAST_API_KEY: KEY, VASTAI_URL: vast.url, REELGATE_URL: admin.url, ADMIN_TOKEN: admin.token };
	const r = await main(["vastai", "deploy", "--name", "rg-vast", "--image", "img:3", "--offer", "555"], {
		env,
		log: out.log,
	});
	const tpl = calls.find((c) => c.url === "/api/v0/template/").body;
	expect(tpl).toMatchObject({ name: "rg-vast-worker", image: "img:3", runtype: "args", private: true });
	expect(tpl.env).toMatch(/^-p 8000:8000 -e DEPLOYMENT_MODE=pod -e ENABLED_MODELS=preview,wan2.2-i2v,wan2.2-s2v/);
	expect(tpl.onstart).toContain("/etc/environment");
	const ask = calls.find((c) => c.method === "PUT");
	expect(ask.url).toBe("/api/v0/asks/555/");
	expect(ask.body).toMatchObject({ template_hash_id: "abc123", label: "rg-vast", runtype: "args" });
	expect(r.url).toBe("http://203.0.113.9:41000");
	const token = /POD_API_TOKEN=([A-Za-z0-9_-]+)/.exec(tpl.env)[1];
	expect(admin.calls.at(-1).body).toMatchObject({ kind: "pod", config: { url: r.url, token } });
	expect(out.text()).not.toContain(token);
	expect(out.text()).not.toContain(KEY);

	const status = collector();
	await main(["vastai", "status", "--instance", "991"], { env, log: status.log });
	expect(status.text()).toMatch(/running; A100 \$0.9\/h/);
	await main(["vastai", "destroy", "--name", "rg-vast", "--instance", "991"], { env, log: () => {} });
	expect(instances.size).toBe(0);
	await expect(main(["vastai", "status"], { env, log: () => {} })).rejects.toThrow(/needs --instance/);
});
