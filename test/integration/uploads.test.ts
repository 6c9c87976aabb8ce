import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { expirePendingUploads, getReadyUpload } from "../../src/db/uploads";
import { ADMIN, call } from "../helpers/api";
import { jpegBytes, mp3Bytes, noiseBytes, pngBytes, SAMPLES, sha256Hex, wavBytes } from "../helpers/media";

interface Upload {
	id: string;
	status: string;
	filename: string;
	content_type: string;
	size: number;
	sha256?: string;
	created_at: string;
	expires_at: string;
	completed_at?: string;
	error?: { code: string; message: string };
	upload?: { method: string; url: string; headers: Record<string, string>; expires_at: string };
}

async function createKey(account: string, scopes?: string[]): Promise<string> {
	const res = await call("/v1/admin/keys", {
		method: "POST",
		headers: ADMIN,
		body: JSON.stringify({ name: `${account}-${scopes?.join("+") ?? "all"}`, account, scopes }),
	});
	expect(res.status).toBe(201);
	return ((await res.json()) as { key: string }).key;
}

const auth = (key: string) => ({ authorization: `Bearer ${key}`, "content-type": "application/json" });

async function createUpload(key: string, body: Record<string, unknown>): Promise<Response> {
	return call("/v1/uploads", { method: "POST", headers: auth(key), body: JSON.stringify(body) });
}

async function started(
	key: string,
	body: Record<string, unknown>,
): Promise<Upload & { upload: NonNullable<Upload["upload"]> }> {
	const res = await createUpload(key, body);
	expect(res.status).toBe(201);
	return (await res.json()) as Upload & { upload: NonNullable<Upload["upload"]> };
}

function put(upload: NonNullable<Upload["upload"]>, bytes: Uint8Array, headers: Record<string, string> = {}) {
	return call(upload.url, { method: upload.method, headers: { ...upload.headers, ...headers }, body: bytes });
}

const complete = (key: string, id: string) =>
	call(`/v1/uploads/${id}/complete`, { method: "POST", headers: auth(key) });
const getUpload = (key: string, id: string) => call(`/v1/uploads/${id}`, { headers: auth(key) });

/** The R2 key a signed URL points at. */
function objectKeyOf(url: string): string {
	return new URL(url).pathname.replace("/v1/storage/", "").split("/").map(decodeURIComponent).join("/");
}

async function expectProblem(res: Response, status: number, code: string): Promise<{ detail: string }> {
	expect(res.status).toBe(status);
	expect(res.headers.get("content-type")).toBe("application/problem+json");
	const body = (await res.json()) as { code: string; detail: string };
	expect(body.code).toBe(code);
	return body;
}

let key: string;
let otherKey: string;
let readOnlyKey: string;
let writeOnlyKey: string;

beforeAll(async () => {
	key = await createKey("acme");
	otherKey = await createKey("globex");
	readOnlyKey = await createKey("acme", ["jobs:read"]);
	writeOnlyKey = await createKey("acme", ["jobs:write"]);
});

describe("uploads: happy", () => {
	describe.each(Object.entries(SAMPLES))("%s", (type, make) => {
		it("creates, PUTs, completes and reads back", async () => {
			const bytes = make();
			const sha256 = await sha256Hex(bytes);
			const created = await started(key, {
				filename: `sample.${type.split("/")[1]}`,
				content_type: type,
				size: bytes.length,
				sha256,
			});
			expect(created.id).toMatch(/^upl_/);
			expect(created.status).toBe("pending");
			expect(created.upload.method).toBe("PUT");
			expect(created.upload.headers).toEqual({ "content-type": type });
			expect(new URL(created.upload.url).host).toBe("reelgate.test");
			expect(Date.parse(created.upload.expires_at)).toBeGreaterThan(Date.now());
			expect(created.expires_at).toBe(created.upload.expires_at);

			const stored = await put(created.upload, bytes);
			expect(stored.status).toBe(200);
			expect(stored.headers.get("etag")).toMatch(/^"/);
			expect(((await stored.json()) as { size: number }).size).toBe(bytes.length);

			const done = await complete(key, created.id);
			expect(done.status).toBe(200);
			const ready = (await done.json()) as Upload;
			expect(ready).toMatchObject({ id: created.id, status: "ready", content_type: type, size: bytes.length, sha256 });
			expect(ready.completed_at).toBeTruthy();
			expect(ready).not.toHaveProperty("upload");

			const again = await complete(key, created.id);
			expect(again.status).toBe(200);
			expect(((await again.json()) as Upload).status).toBe("ready");

			const read = await getUpload(key, created.id);
			expect(read.status).toBe(200);
			expect(await read.json()).toEqual(ready);
		});
	});

	it("maps WAV aliases to audio/wav and asks for the canonical header", async () => {
		const bytes = wavBytes();
		const created = await started(key, { filename: "a.wav", content_type: "audio/x-wav", size: bytes.length });
		expect(created.content_type).toBe("audio/wav");
		expect(created.upload.headers["content-type"]).toBe("audio/wav");
		expect((await put(created.upload, bytes)).status).toBe(200);
		expect((await complete(key, created.id)).status).toBe(200);
	});

	it("accepts an uppercase sha256 and returns it lowercase", async () => {
		const bytes = mp3Bytes({ id3: true });
		const sha = (await sha256Hex(bytes)).toUpperCase();
		const created = await started(key, {
			filename: "a.mp3",
			content_type: "audio/mpeg",
			size: bytes.length,
			sha256: sha,
		});
		expect(created.sha256).toBe(sha.toLowerCase());
		expect((await put(created.upload, bytes)).status).toBe(200);
		expect((await complete(key, created.id)).status).toBe(200);
	});

	it("is listed in the OpenAPI document", async () => {
		const doc = (await (await call("/openapi.json")).json()) as { paths: Record<string, unknown> };
		expect(Object.keys(doc.paths)).toEqual(
			expect.arrayContaining(["/v1/uploads", "/v1/uploads/{id}", "/v1/uploads/{id}/complete", "/v1/storage/{key}"]),
		);
	});
});

describe("uploads: create errors", () => {
	it.each<[string, Record<string, unknown>, number, string]>([
		["unsupported type", { filename: "a.gif", content_type: "image/gif", size: 10 }, 415, "unsupported_media_type"],
		["a video", { filename: "a.mp4", content_type: "video/mp4", size: 10 }, 415, "unsupported_media_type"],
		[
			"image over the limit",
			{ filename: "a.png", content_type: "image/png", size: 26214401 },
			413,
			"payload_too_large",
		],
		[
			"audio over the limit",
			{ filename: "a.wav", content_type: "audio/wav", size: 104857601 },
			413,
			"payload_too_large",
		],
		["size 0", { filename: "a.png", content_type: "image/png", size: 0 }, 400, "invalid_request"],
		["negative size", { filename: "a.png", content_type: "image/png", size: -5 }, 400, "invalid_request"],
		["fractional size", { filename: "a.png", content_type: "image/png", size: 1.5 }, 400, "invalid_request"],
		["size as a string", { filename: "a.png", content_type: "image/png", size: "10" }, 400, "invalid_request"],
		["short sha256", { filename: "a.png", content_type: "image/png", size: 10, sha256: "abc" }, 400, "invalid_request"],
		[
			"non-hex sha256",
			{ filename: "a.png", content_type: "image/png", size: 10, sha256: "z".repeat(64) },
			400,
			"invalid_request",
		],
		["empty filename", { filename: " ", content_type: "image/png", size: 10 }, 400, "invalid_request"],
		["control characters", { filename: "a\nb.png", content_type: "image/png", size: 10 }, 400, "invalid_request"],
		["unknown field", { filename: "a.png", content_type: "image/png", size: 10, extra: 1 }, 400, "invalid_request"],
		["missing content_type", { filename: "a.png", size: 10 }, 400, "invalid_request"],
	])("%s", async (_name, body, status, code) => {
		await expectProblem(await createUpload(key, body), status, code);
	});

	it("answers broken JSON with 400", async () => {
		await expectProblem(
			await call("/v1/uploads", { method: "POST", headers: auth(key), body: "{" }),
			400,
			"invalid_request",
		);
	});
});

describe("uploads: complete errors (nothing is left in R2)", () => {
	it("409 not_ready before any bytes", async () => {
		const created = await started(key, { filename: "a.png", content_type: "image/png", size: 100 });
		const body = await expectProblem(await complete(key, created.id), 409, "not_ready");
		expect(body.detail).toMatch(/no bytes uploaded yet/i);
		expect(((await (await getUpload(key, created.id)).json()) as Upload).status).toBe("pending");
	});

	it.each<[string, () => Promise<{ bytes: Uint8Array; declared: Record<string, unknown> }>, RegExp]>([
		[
			"wrong type bytes",
			async () => {
				const bytes = jpegBytes();
				return { bytes, declared: { content_type: "image/png", size: bytes.length } };
			},
			/not image\/png.*image\/jpeg/,
		],
		[
			"bytes of no known type",
			async () => {
				const bytes = noiseBytes(300);
				return { bytes, declared: { content_type: "audio/flac", size: bytes.length } };
			},
			/not audio\/flac/,
		],
		[
			"sha256 mismatch",
			async () => {
				const bytes = pngBytes();
				return {
					bytes,
					declared: { content_type: "image/png", size: bytes.length, sha256: await sha256Hex(pngBytes(3, 3)) },
				};
			},
			/SHA-256/,
		],
	])("422 for %s; the object is deleted and the upload failed", async (_name, make, detail) => {
		const { bytes, declared } = await make();
		const created = await started(key, { filename: "x", ...declared });
		expect((await put(created.upload, bytes)).status).toBe(200);
		const objectKey = objectKeyOf(created.upload.url);
		expect(await env.BUCKET.head(objectKey)).not.toBeNull();

		const problem = await expectProblem(await complete(key, created.id), 422, "unprocessable");
		expect(problem.detail).toMatch(detail);
		expect(await env.BUCKET.head(objectKey)).toBeNull();

		const failed = (await (await getUpload(key, created.id)).json()) as Upload;
		expect(failed.status).toBe("failed");
		expect(failed.error?.message).toBe(problem.detail);
		// Idempotent: the same verdict again; and the URL can no longer store bytes.
		expect((await expectProblem(await complete(key, created.id), 422, "unprocessable")).detail).toBe(problem.detail);
		await expectProblem(await put(created.upload, bytes), 409, "conflict");
		expect(await env.BUCKET.head(objectKey)).toBeNull();
	});

	it("422 when the stored object's size differs from the declared size", async () => {
		const bytes = pngBytes();
		const created = await started(key, { filename: "a.png", content_type: "image/png", size: bytes.length + 1 });
		const objectKey = objectKeyOf(created.upload.url);
		// The signed PUT refuses the wrong size, so put it behind the URL's back.
		await expectProblem(await put(created.upload, bytes), 400, "invalid_request");
		expect(await env.BUCKET.head(objectKey)).toBeNull();
		await env.BUCKET.put(objectKey, bytes);
		const problem = await expectProblem(await complete(key, created.id), 422, "unprocessable");
		expect(problem.detail).toMatch(new RegExp(`${bytes.length} bytes.*declared ${bytes.length + 1}`));
		expect(await env.BUCKET.head(objectKey)).toBeNull();
	});

	it("a ready upload's URL cannot replace its verified bytes", async () => {
		const bytes = pngBytes();
		const created = await started(key, { filename: "a.png", content_type: "image/png", size: bytes.length });
		expect((await put(created.upload, bytes)).status).toBe(200);
		expect((await complete(key, created.id)).status).toBe(200);
		await expectProblem(await put(created.upload, pngBytes(2, 2, [0, 0, 255])), 409, "conflict");
		const ready = await getReadyUpload(env.DB, "acme", created.id);
		const stored = await env.BUCKET.get(ready?.object_key ?? "");
		expect(await sha256Hex(new Uint8Array(await (stored as R2ObjectBody).arrayBuffer()))).toBe(await sha256Hex(bytes));
		// Nothing is left at the URL's key: the verified bytes live under a key no URL writes.
		expect(await env.BUCKET.head(objectKeyOf(created.upload.url))).toBeNull();
	});

	it("an expired upload cannot be completed", async () => {
		const bytes = pngBytes();
		const created = await started(key, { filename: "a.png", content_type: "image/png", size: bytes.length });
		await env.DB.prepare("UPDATE uploads SET status = 'expired' WHERE id = ?").bind(created.id).run();
		await expectProblem(await complete(key, created.id), 409, "conflict");
	});

	it("404 for an unknown id", async () => {
		await expectProblem(await complete(key, "upl_doesnotexist"), 404, "not_found");
		await expectProblem(await getUpload(key, "upl_doesnotexist"), 404, "not_found");
	});
});

describe("uploads: security", () => {
	it.each<[string, () => string | null, string, number, string]>([
		["no key, create", () => null, "create", 401, "unauthorized"],
		["no key, complete", () => null, "complete", 401, "unauthorized"],
		["no key, get", () => null, "get", 401, "unauthorized"],
		["a malformed key", () => "rg_live_nope", "get", 401, "unauthorized"],
		["read-only key, create", () => readOnlyKey, "create", 403, "forbidden"],
		["read-only key, complete", () => readOnlyKey, "complete", 403, "forbidden"],
		["write-only key, get", () => writeOnlyKey, "get", 403, "forbidden"],
		["another account, complete", () => otherKey, "complete", 404, "not_found"],
		["another account, get", () => otherKey, "get", 404, "not_found"],
	])("%s", async (_name, keyOf, action, status, code) => {
		const bytes = pngBytes();
		const created = await started(key, { filename: "a.png", content_type: "image/png", size: bytes.length });
		expect((await put(created.upload, bytes)).status).toBe(200);
		const k = keyOf();
		const headers: Record<string, string> = {
			"content-type": "application/json",
			...(k ? { authorization: `Bearer ${k}` } : {}),
		};
		const res =
			action === "create"
				? await call("/v1/uploads", {
						method: "POST",
						headers,
						body: JSON.stringify({ filename: "a.png", content_type: "image/png", size: 10 }),
					})
				: action === "complete"
					? await call(`/v1/uploads/${created.id}/complete`, { method: "POST", headers })
					: await call(`/v1/uploads/${created.id}`, { headers });
		await expectProblem(res, status, code);
		// Nothing the refused caller did changed the upload.
		expect(((await (await getUpload(key, created.id)).json()) as Upload).status).toBe("pending");
	});

	it("the upload URL carries the credential in the query, bound to the upload's key", async () => {
		const created = await started(key, { filename: "a.png", content_type: "image/png", size: 10 });
		const url = new URL(created.upload.url);
		expect(url.pathname).toMatch(new RegExp(`^/v1/storage/uploads/acme/${created.id}$`));
		expect(url.searchParams.get("sig")).toBeTruthy();
		expect(url.searchParams.get("size")).toBe("10");
		expect(url.searchParams.get("ct")).toBe("image/png");
	});
});

describe("uploads: for other modules", () => {
	it("getReadyUpload returns only ready uploads of the account", async () => {
		const bytes = pngBytes();
		const created = await started(key, { filename: "a.png", content_type: "image/png", size: bytes.length });
		expect(await getReadyUpload(env.DB, "acme", created.id)).toBeNull();
		expect((await put(created.upload, bytes)).status).toBe(200);
		expect((await complete(key, created.id)).status).toBe(200);
		const ready = await getReadyUpload(env.DB, "acme", created.id);
		// The verified copy (a key no signed URL writes), with the etag and sha256 of its bytes, measured even
		// though none was declared.
		expect(ready).toMatchObject({
			id: created.id,
			object_key: expect.stringMatching(new RegExp(`^verified/acme/${created.id}/[0-9a-f]{16}$`)),
			content_type: "image/png",
			size: bytes.length,
			sha256: await sha256Hex(bytes),
		});
		expect(ready?.etag).toBe((await env.BUCKET.head(ready?.object_key ?? ""))?.etag);
		expect(await getReadyUpload(env.DB, "globex", created.id)).toBeNull();
	});

	it("expirePendingUploads expires stale pending uploads, deletes their bytes and leaves the rest", async () => {
		const bytes = pngBytes();
		const stale = await started(key, { filename: "a.png", content_type: "image/png", size: bytes.length });
		const fresh = await started(key, { filename: "b.png", content_type: "image/png", size: bytes.length });
		const ready = await started(key, { filename: "c.png", content_type: "image/png", size: bytes.length });
		for (const u of [stale, fresh, ready]) expect((await put(u.upload, bytes)).status).toBe(200);
		expect((await complete(key, ready.id)).status).toBe(200);
		const past = new Date(Date.now() - 60 * 60 * 1000).toISOString();
		await env.DB.prepare("UPDATE uploads SET expires_at = ? WHERE id IN (?, ?)").bind(past, stale.id, ready.id).run();

		expect(await expirePendingUploads(env, new Date().toISOString())).toBe(1);
		expect(((await (await getUpload(key, stale.id)).json()) as Upload).status).toBe("expired");
		expect(await env.BUCKET.head(objectKeyOf(stale.upload.url))).toBeNull();
		expect(((await (await getUpload(key, fresh.id)).json()) as Upload).status).toBe("pending");
		expect(await env.BUCKET.head(objectKeyOf(fresh.upload.url))).not.toBeNull();
		expect(((await (await getUpload(key, ready.id)).json()) as Upload).status).toBe("ready");
		const kept = await getReadyUpload(env.DB, "acme", ready.id);
		expect(await env.BUCKET.head(kept?.object_key ?? "")).not.toBeNull();
		await expectProblem(await complete(key, stale.id), 409, "conflict");
	});
});
