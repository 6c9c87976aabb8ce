// Model files into the operator's R2 (`npm run models -- push`): a multipart upload through the admin API, the
// sha256 and size recorded, a second push of the same file found complete, parts that do not add up refused.
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ADMIN, call } from "../helpers/api";

async function sha256Hex(bytes: Uint8Array): Promise<string> {
	const digest = await crypto.subtle.digest("SHA-256", bytes);
	return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const start = (body: Record<string, unknown>) =>
	call("/v1/admin/model-files", { method: "POST", headers: ADMIN, body: JSON.stringify(body) });

function putPart(uploadId: string, key: string, n: number, bytes: Uint8Array): Promise<Response> {
	return call(`/v1/admin/model-files/${encodeURIComponent(uploadId)}/parts/${n}?key=${encodeURIComponent(key)}`, {
		method: "PUT",
		headers: { authorization: ADMIN.authorization, "content-type": "application/octet-stream" },
		body: bytes,
	});
}

function complete(uploadId: string, key: string, parts: { part_number: number; etag: string }[]): Promise<Response> {
	return call(`/v1/admin/model-files/${encodeURIComponent(uploadId)}/complete?key=${encodeURIComponent(key)}`, {
		method: "POST",
		headers: ADMIN,
		body: JSON.stringify({ parts }),
	});
}

describe("POST /v1/admin/model-files", () => {
	it("stores a file from its parts under models/{folder}/{name}, with its sha256, and finds it complete after", async () => {
		const bytes = new TextEncoder().encode("GGUF weights of a private fine-tune");
		const sha256 = await sha256Hex(bytes);
		const body = { folder: "unet", name: "finetune-Q4_K_M.gguf", size: bytes.byteLength, sha256 };
		const started = await start(body);
		expect(started.status).toBe(201);
		const upload = (await started.json()) as { key: string; upload_id: string; state: string; part_size: number };
		expect(upload).toMatchObject({
			key: "models/unet/finetune-Q4_K_M.gguf",
			state: "uploading",
			part_size: 64 * 1024 * 1024,
		});
		const part = await putPart(upload.upload_id, upload.key, 1, bytes);
		expect(part.status).toBe(200);
		const { etag } = (await part.json()) as { etag: string };
		const done = await complete(upload.upload_id, upload.key, [{ part_number: 1, etag }]);
		expect(done.status).toBe(200);
		expect(await done.json()).toEqual({ key: upload.key, state: "complete", size: bytes.byteLength, sha256 });
		const object = await env.BUCKET.get(upload.key);
		expect(new Uint8Array((await object?.arrayBuffer()) ?? new ArrayBuffer(0))).toEqual(bytes);
		expect(object?.customMetadata?.sha256).toBe(sha256);
		// Pushing it again uploads nothing.
		const again = await start(body);
		expect(again.status).toBe(200);
		expect(((await again.json()) as { state: string }).state).toBe("complete");
	});

	it("refuses parts that do not add up to the announced size, and keeps nothing under the key", async () => {
		const bytes = new TextEncoder().encode("short");
		const body = { folder: "vae", name: "broken.safetensors", size: 1000, sha256: await sha256Hex(bytes) };
		const upload = (await (await start(body)).json()) as { key: string; upload_id: string };
		const { etag } = (await (await putPart(upload.upload_id, upload.key, 1, bytes)).json()) as { etag: string };
		const done = await complete(upload.upload_id, upload.key, [{ part_number: 1, etag }]);
		expect(done.status).toBe(409);
		expect(((await done.json()) as { detail: string }).detail).toBe(
			"The parts of models/vae/broken.safetensors add up to 5 bytes, not 1000.",
		);
		expect(await env.BUCKET.head(upload.key)).toBeNull();
	});

	it.each([
		[{ folder: "weights", name: "a.gguf", size: 1, sha256: "0".repeat(64) }, "json.folder"],
		[{ folder: "unet", name: "../a.gguf", size: 1, sha256: "0".repeat(64) }, "json.name"],
		[{ folder: "unet", name: "a.gguf", size: 1, sha256: "XYZ" }, "json.sha256"],
	])("refuses %j, naming the field", async (body, path) => {
		const res = await start(body);
		expect(res.status).toBe(400);
		expect(((await res.json()) as { errors: { path: string }[] }).errors.map((e) => e.path)).toContain(path);
	});

	it("needs the admin token", async () => {
		const res = await call("/v1/admin/model-files", { method: "POST", body: "{}" });
		expect(res.status).toBe(401);
	});
});
