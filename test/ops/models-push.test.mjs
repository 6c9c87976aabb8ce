import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mirrorModelFile, pushModelFile } from "../../scripts/lib/push-model-file.mjs";

// A stand-in for the three admin routes (src/routes/admin-model-files.ts) keeping parts in memory; `failPart`
// makes one part's PUT answer 502 once, as an interrupted upload would.
function fakeReelgate() {
	const objects = new Map();
	const uploads = new Map();
	const calls = [];
	let failPart = null;
	const server = createServer(async (req, res) => {
		const chunks = [];
		for await (const c of req) chunks.push(c);
		const body = Buffer.concat(chunks);
		const url = new URL(req.url ?? "/", "http://x");
		calls.push(`${req.method} ${url.pathname}`);
		const json = (status, value) => {
			res.writeHead(status, { "content-type": "application/json" });
			res.end(JSON.stringify(value));
		};
		if (req.headers.authorization !== "Bearer t0ken") return json(401, { detail: "no" });
		if (req.method === "POST" && url.pathname === "/v1/admin/model-files") {
			const b = JSON.parse(body.toString());
			const key = `models/${b.folder}/${b.name}`;
			const stored = objects.get(key);
			if (stored && stored.sha256 === b.sha256)
				return json(200, { key, state: "complete", size: b.size, sha256: b.sha256 });
			const id = `up-${uploads.size + 1}`;
			uploads.set(id, { key, meta: b, parts: new Map() });
			return json(201, {
				key,
				state: "uploading",
				upload_id: id,
				part_size: b.part_size ?? 64 * 1024 * 1024,
				size: b.size,
				sha256: b.sha256,
			});
		}
		const part = /^\/v1\/admin\/model-files\/([^/]+)\/parts\/(\d+)$/.exec(url.pathname);
		if (req.method === "PUT" && part) {
			const n = Number(part[2]);
			if (failPart === n) {
				failPart = null;
				res.writeHead(502);
				return res.end();
			}
			uploads.get(part[1]).parts.set(n, body);
			return json(200, { part_number: n, etag: `etag-${n}` });
		}
		const done = /^\/v1\/admin\/model-files\/([^/]+)\/complete$/.exec(url.pathname);
		if (req.method === "POST" && done) {
			const up = uploads.get(done[1]);
			const { parts } = JSON.parse(body.toString());
			const bytes = Buffer.concat(
				parts.sort((a, b) => a.part_number - b.part_number).map((p) => up.parts.get(p.part_number)),
			);
			objects.set(up.key, { bytes, sha256: up.meta.sha256 });
			return json(200, { key: up.key, state: "complete", size: bytes.length, sha256: up.meta.sha256 });
		}
		json(404, { detail: "no route" });
	});
	return new Promise((resolve) =>
		server.listen(0, "127.0.0.1", () =>
			resolve({
				base: `http://127.0.0.1:${server.address().port}`,
				objects,
				calls,
				failOnce: (n) => {
					failPart = n;
				},
				close: () => new Promise((r) => server.close(r)),
			}),
		),
	);
}

let api;
beforeAll(async () => {
	api = await fakeReelgate();
});
afterAll(() => api.close());

describe("npm run models -- push", () => {
	it("uploads a file in parts, resumes after a failed part without resending the stored ones, and records its sha256", async () => {
		const dir = mkdtempSync(path.join(tmpdir(), "push-"));
		const file = path.join(dir, "finetune.gguf");
		const bytes = Buffer.alloc(3 * 1024 * 1024 + 5, 7);
		writeFileSync(file, bytes);
		const sha256 = createHash("sha256").update(bytes).digest("hex");
		const opts = { base: api.base, token: "t0ken", file, folder: "unet", name: "finetune.gguf", partSize: 1024 * 1024 };
		api.failOnce(3);
		await expect(pushModelFile(opts)).rejects.toThrow("part 3 of 4: HTTP 502");
		expect(existsSync(`${file}.reelgate-push.json`)).toBe(true);
		const resumed = await pushModelFile(opts);
		expect(resumed).toEqual({ key: "models/unet/finetune.gguf", size: bytes.length, sha256, sent: 2 });
		expect(api.objects.get("models/unet/finetune.gguf").bytes.equals(bytes)).toBe(true);
		expect(existsSync(`${file}.reelgate-push.json`)).toBe(false);
		// Once stored, a push sends nothing.
		const before = api.calls.length;
		expect((await pushModelFile(opts)).sent).toBe(0);
		expect(api.calls.slice(before)).toEqual(["POST /v1/admin/model-files"]);
	});
});

describe("npm run models -- mirror", () => {
	it("downloads a public file, checks its sha256, pushes it, and leaves no copy behind", async () => {
		const bytes = Buffer.from("weights from a public hub");
		const files = createServer((req, res) => {
			res.writeHead(req.url === "/hub/vae.safetensors" ? 200 : 404);
			res.end(req.url === "/hub/vae.safetensors" ? bytes : undefined);
		});
		await new Promise((r) => files.listen(0, "127.0.0.1", r));
		const hub = `http://127.0.0.1:${files.address().port}/hub/vae.safetensors`;
		const workDir = mkdtempSync(path.join(tmpdir(), "mirror-"));
		const sha256 = createHash("sha256").update(bytes).digest("hex");
		try {
			const opts = { base: api.base, token: "t0ken", folder: "vae", workDir };
			await expect(mirrorModelFile({ ...opts, url: hub, sha256: "0".repeat(64) })).rejects.toThrow(
				`has sha256 ${sha256}, not ${"0".repeat(64)}`,
			);
			expect(api.objects.has("models/vae/vae.safetensors")).toBe(false);
			const done = await mirrorModelFile({ ...opts, url: hub, sha256 });
			expect(done).toMatchObject({ key: "models/vae/vae.safetensors", size: bytes.length, sha256 });
			expect(api.objects.get("models/vae/vae.safetensors").bytes.equals(bytes)).toBe(true);
			expect(readdirSync(workDir)).toEqual([]);
		} finally {
			await new Promise((r) => files.close(r));
		}
	});
});
