/**
 * Uploads that scale: multipart with resume, abort and expiry; dedup; every bad-content case (each leaving
 * nothing stored); URL inputs behind the SSRF guard; GPU output targets. Worker-signed flavour (the R2
 * presigned one is tested against a real S3 server in test/s3).
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { expirePendingUploads, getReadyUpload } from "../../src/db/uploads";
import worker from "../../src/index";
import {
	completeOutputMultipart,
	OUTPUT_PART_BYTES,
	signOutputParts,
	signOutputTarget,
} from "../../src/storage/output";
import { ingestUrlInput } from "../../src/storage/url-input";
import { jpegBytes, pngBytes, sha256Hex, wavBytes } from "../helpers/media";

const MiB = 1024 * 1024;
const ADMIN = { authorization: "Bearer test-admin-token", "content-type": "application/json" };
/** Small multipart settings so a test file of ~11 MiB has three parts. */
const MULTIPART = { MULTIPART_THRESHOLD_BYTES: String(5 * MiB), MULTIPART_PART_BYTES: String(5 * MiB) };

/** Calls the Worker with extra vars layered over the test env (limits, multipart threshold). */
async function call(path: string, init: RequestInit = {}, vars: Record<string, string> = {}): Promise<Response> {
	const ctx = createExecutionContext();
	const url = path.startsWith("http") ? path : `http://reelgate.test${path}`;
	// A Request built here has no Content-Length of its own (the HTTP layer would add it): set it.
	const headers = new Headers(init.headers);
	if (init.body instanceof Uint8Array) headers.set("content-length", String(init.body.byteLength));
	const res = await worker.fetch(new Request(url, { ...init, headers }), { ...env, ...vars } as Env, ctx);
	await waitOnExecutionContext(ctx);
	return res;
}

async function createKey(account: string): Promise<string> {
	const res = await call("/v1/admin/keys", {
		method: "POST",
		headers: ADMIN,
		body: JSON.stringify({ name: account, account }),
	});
	expect(res.status).toBe(201);
	return ((await res.json()) as { key: string }).key;
}

const auth = (key: string) => ({ authorization: `Bearer ${key}`, "content-type": "application/json" });

interface PartTarget {
	part_number: number;
	size: number;
	url: string;
	headers: Record<string, string>;
}
interface UploadBody {
	id: string;
	status: string;
	size: number;
	deduplicated?: boolean;
	width?: number;
	height?: number;
	duration_s?: number;
	error?: { code: string; message: string };
	upload?: { url?: string; headers: Record<string, string> };
	multipart?: {
		upload_id: string;
		part_size: number;
		part_count: number;
		parts_stored: { part_number: number; size: number }[];
		parts_missing: number[];
		parts: PartTarget[];
	};
}

async function create(key: string, body: Record<string, unknown>, vars: Record<string, string> = {}) {
	const res = await call("/v1/uploads", { method: "POST", headers: auth(key), body: JSON.stringify(body) }, vars);
	return { res, body: (await res.json()) as UploadBody };
}
const complete = (key: string, id: string, vars: Record<string, string> = {}) =>
	call(`/v1/uploads/${id}/complete`, { method: "POST", headers: auth(key) }, vars);
const getUpload = async (key: string, id: string) =>
	(await (await call(`/v1/uploads/${id}`, { headers: auth(key) })).json()) as UploadBody;
const putPart = (part: PartTarget, bytes: Uint8Array) =>
	call(part.url, { method: "PUT", headers: part.headers, body: bytes });
const uploadKeyOf = (account: string, id: string) => `uploads/${account}/${id}`;

async function expectProblem(res: Response, status: number, code: string): Promise<string> {
	expect(res.status).toBe(status);
	expect(res.headers.get("content-type")).toBe("application/problem+json");
	const body = (await res.json()) as { code: string; detail: string };
	expect(body.code).toBe(code);
	return body.detail;
}

/** Nothing left under an upload's key: no object, and no open multipart upload to put parts into. */
async function expectNothingStored(objectKey: string, multipartId?: string): Promise<void> {
	expect(await env.BUCKET.head(objectKey)).toBeNull();
	if (multipartId) {
		await expect(
			env.BUCKET.resumeMultipartUpload(objectKey, multipartId).uploadPart(1, new Uint8Array(5 * MiB)),
		).rejects.toThrow();
	}
}

let key: string;
let otherKey: string;
beforeAll(async () => {
	key = await createKey("scale");
	otherKey = await createKey("scale-other");
});

/** 60 s of 48 kHz stereo silence: 11,520,044 bytes, three 5 MiB parts. */
const bigWav = wavBytes({ seconds: 60, sampleRate: 48000, channels: 2 });
const slice = (bytes: Uint8Array, part: PartTarget, partSize: number) =>
	bytes.slice((part.part_number - 1) * partSize, (part.part_number - 1) * partSize + part.size);

describe("multipart uploads (Worker-signed, through the R2 binding's multipart API)", () => {
	it("lists part URLs, reports stored and missing parts, and completes after a resume", async () => {
		const sha256 = await sha256Hex(bigWav);
		const { res, body } = await create(
			key,
			{ filename: "long.wav", content_type: "audio/wav", size: bigWav.length, sha256 },
			MULTIPART,
		);
		expect(res.status).toBe(201);
		expect(body.upload?.url).toBeUndefined();
		const mp = body.multipart;
		if (!mp) throw new Error("no multipart");
		expect(mp.part_size).toBe(5 * MiB);
		expect(mp.parts.map((p) => [p.part_number, p.size])).toEqual([
			[1, 5 * MiB],
			[2, 5 * MiB],
			[3, bigWav.length - 10 * MiB],
		]);
		const [p1, p2, p3] = mp.parts as [PartTarget, PartTarget, PartTarget];

		// A part of the wrong size is refused (each URL is signed for its exact size).
		await expectProblem(await putPart(p1, new Uint8Array(100)), 400, "invalid_request");

		// Parts 1 and 3 arrive; the connection drops before part 2.
		expect((await putPart(p1, slice(bigWav, p1, mp.part_size))).status).toBe(200);
		const third = await putPart(p3, slice(bigWav, p3, mp.part_size));
		expect(third.status).toBe(200);
		expect(third.headers.get("etag")).toMatch(/^".+"$/);

		const state = await getUpload(key, body.id);
		expect(state.status).toBe("pending");
		expect(state.multipart?.parts_stored.map((p) => p.part_number)).toEqual([1, 3]);
		expect(state.multipart?.parts_missing).toEqual([2]);
		expect(state.multipart?.parts.map((p) => p.part_number)).toEqual([2]);

		const early = await expectProblem(await complete(key, body.id, MULTIPART), 409, "not_ready");
		expect(early).toMatch(/1 part\(s\) are not stored yet \(2\)/);

		// Resume with only the missing part, from the fresh URL GET gave.
		const fresh = state.multipart?.parts[0] as PartTarget;
		expect((await putPart(fresh, slice(bigWav, p2, mp.part_size))).status).toBe(200);
		const done = await complete(key, body.id, MULTIPART);
		expect(done.status).toBe(200);
		const ready = (await done.json()) as UploadBody;
		expect(ready.status).toBe("ready");
		expect(ready.duration_s).toBeCloseTo(60, 3);
		// The verified copy the row names is what consumers read; the client's key is emptied.
		const row = await getReadyUpload(env.DB, "scale", body.id);
		expect(await env.BUCKET.head(uploadKeyOf("scale", body.id))).toBeNull();
		const stored = await env.BUCKET.get(row?.object_key ?? "");
		expect(stored?.size).toBe(bigWav.length);
		expect(await sha256Hex(new Uint8Array(await (stored as R2ObjectBody).arrayBuffer()))).toBe(sha256);

		// Idempotent; and the parts can no longer be replaced.
		expect((await complete(key, body.id, MULTIPART)).status).toBe(200);
		await expectProblem(await putPart(p1, slice(bigWav, p1, mp.part_size)), 409, "conflict");
	});

	it("abort frees the parts and refuses further parts", async () => {
		const { body } = await create(
			key,
			{ filename: "a.wav", content_type: "audio/wav", size: bigWav.length },
			MULTIPART,
		);
		const mp = body.multipart as NonNullable<UploadBody["multipart"]>;
		const p1 = mp.parts[0] as PartTarget;
		expect((await putPart(p1, slice(bigWav, p1, mp.part_size))).status).toBe(200);
		const res = await call(`/v1/uploads/${body.id}/abort`, { method: "POST", headers: auth(key) });
		expect(res.status).toBe(200);
		const aborted = (await res.json()) as UploadBody;
		expect(aborted.status).toBe("failed");
		expect(aborted.error?.code).toBe("aborted");
		await expectProblem(await putPart(p1, slice(bigWav, p1, mp.part_size)), 409, "conflict");
		await expectNothingStored(uploadKeyOf("scale", body.id), mp.upload_id);
		// Idempotent.
		expect((await call(`/v1/uploads/${body.id}/abort`, { method: "POST", headers: auth(key) })).status).toBe(200);
	});

	it("the cron expires an abandoned multipart upload and aborts it", async () => {
		const { body } = await create(
			key,
			{ filename: "x.wav", content_type: "audio/wav", size: bigWav.length },
			MULTIPART,
		);
		const mp = body.multipart as NonNullable<UploadBody["multipart"]>;
		const p1 = mp.parts[0] as PartTarget;
		expect((await putPart(p1, slice(bigWav, p1, mp.part_size))).status).toBe(200);
		const later = new Date(Date.now() + 3 * 3600_000).toISOString();
		expect(await expirePendingUploads(env, later)).toBeGreaterThanOrEqual(1);
		expect((await getUpload(key, body.id)).status).toBe("expired");
		await expectNothingStored(uploadKeyOf("scale", body.id), mp.upload_id);
		const parts = await env.DB.prepare("SELECT COUNT(*) AS n FROM upload_parts WHERE upload_id = ?")
			.bind(body.id)
			.first<{ n: number }>();
		expect(parts?.n).toBe(0);
	});

	it("parts of the wrong size written straight to R2 (as presigned URLs allow) fail at complete, leaving nothing", async () => {
		const { body } = await create(
			key,
			{ filename: "w.wav", content_type: "audio/wav", size: bigWav.length },
			MULTIPART,
		);
		const mp = body.multipart as NonNullable<UploadBody["multipart"]>;
		const objectKey = uploadKeyOf("scale", body.id);
		const upload = env.BUCKET.resumeMultipartUpload(objectKey, mp.upload_id);
		// A client that split the file its own way: part 1 too short.
		const part = await upload.uploadPart(1, bigWav.slice(0, 5 * MiB - 1));
		await env.DB.prepare(
			"INSERT INTO upload_parts (upload_id, part_number, etag, size, created_at) VALUES (?, 1, ?, ?, ?)",
		)
			.bind(body.id, part.etag, 5 * MiB - 1, new Date().toISOString())
			.run();
		for (const n of [2, 3]) {
			const target = mp.parts[n - 1] as PartTarget;
			expect((await putPart(target, slice(bigWav, target, mp.part_size))).status).toBe(200);
		}
		const detail = await expectProblem(await complete(key, body.id, MULTIPART), 422, "unprocessable");
		expect(detail).toMatch(/Part 1 has 5242879 bytes; it must have 5242880/);
		await expectNothingStored(objectKey, mp.upload_id);
	});
});

describe("R2 presigned flavour (R2 S3 credentials configured)", () => {
	const R2 = {
		R2_ACCOUNT_ID: "acct123",
		R2_ACCESS_KEY_ID: "AKIDEXAMPLE",
		R2_SECRET_ACCESS_KEY: "secret",
		R2_BUCKET: "reelgate-media",
		...MULTIPART,
	};
	it("returns presigned S3 URLs with the Content-Type signed, for a single PUT and for parts", async () => {
		const png = pngBytes();
		const single = await create(key, { filename: "a.png", content_type: "image/png", size: png.length }, R2);
		expect(single.res.status).toBe(201);
		const url = new URL(single.body.upload?.url as string);
		expect(url.host).toBe("acct123.r2.cloudflarestorage.com");
		expect(url.pathname).toBe(`/reelgate-media/uploads/scale/${single.body.id}`);
		expect(url.searchParams.get("X-Amz-SignedHeaders")).toBe("content-type;host");
		expect(url.searchParams.get("X-Amz-Expires")).toBe("3600");
		expect(url.searchParams.get("X-Amz-Credential")).toMatch(/^AKIDEXAMPLE\/\d{8}\/auto\/s3\/aws4_request$/);
		expect(single.body.upload?.headers).toEqual({ "content-type": "image/png" });

		const multi = await create(key, { filename: "l.wav", content_type: "audio/wav", size: bigWav.length }, R2);
		const parts = multi.body.multipart?.parts ?? [];
		expect(parts).toHaveLength(3);
		const part = new URL(parts[1]?.url as string);
		expect(part.searchParams.get("partNumber")).toBe("2");
		expect(part.searchParams.get("uploadId")).toBe(multi.body.multipart?.upload_id);
		expect(part.searchParams.get("X-Amz-SignedHeaders")).toBe("host");
		// The multipart upload was created through the binding, so the parts land in the same bucket.
		await env.BUCKET.resumeMultipartUpload(
			`uploads/scale/${multi.body.id}`,
			multi.body.multipart?.upload_id as string,
		).abort();
	});
});

describe("dedup", () => {
	it("the same account sending the same sha256 gets the stored upload back, no second transfer", async () => {
		const png = pngBytes(3, 3);
		const sha256 = await sha256Hex(png);
		const first = await create(key, { filename: "a.png", content_type: "image/png", size: png.length, sha256 });
		expect(first.res.status).toBe(201);
		expect(
			(await call(first.body.upload?.url as string, { method: "PUT", headers: first.body.upload?.headers, body: png }))
				.status,
		).toBe(200);
		expect((await complete(key, first.body.id)).status).toBe(200);

		const again = await create(key, {
			filename: "b.png",
			content_type: "image/png",
			size: png.length,
			sha256: sha256.toUpperCase(),
		});
		expect(again.res.status).toBe(200);
		expect(again.body).toMatchObject({ id: first.body.id, status: "ready", deduplicated: true, width: 3, height: 3 });
		expect(again.body.upload).toBeUndefined();

		// Another account, or no sha256: a new upload.
		expect(
			(await create(otherKey, { filename: "a.png", content_type: "image/png", size: png.length, sha256 })).res.status,
		).toBe(201);
		expect((await create(key, { filename: "a.png", content_type: "image/png", size: png.length })).res.status).toBe(
			201,
		);
	});
});

describe("content checks: every bad upload is a 422 and nothing stays stored", () => {
	const badPng = pngBytes();
	badPng[12] = 0x58; // IHDR renamed: no readable dimensions
	const cases: {
		name: string;
		declared: { content_type: string; size?: number; sha256?: string };
		bytes: Uint8Array;
		vars?: Record<string, string>;
		message: RegExp;
	}[] = [
		{
			name: "size differs from the declared size",
			declared: { content_type: "image/png", size: 10 },
			bytes: pngBytes(),
			message: /declared 10/,
		},
		{
			name: "JPEG bytes declared PNG",
			declared: { content_type: "image/png" },
			bytes: jpegBytes(),
			message: /look like image\/jpeg/,
		},
		{
			name: "PNG bytes declared WAV",
			declared: { content_type: "audio/wav" },
			bytes: pngBytes(),
			message: /not audio\/wav/,
		},
		{
			name: "sha256 mismatch",
			declared: { content_type: "image/png", sha256: "0".repeat(64) },
			bytes: pngBytes(),
			message: /SHA-256/,
		},
		{
			name: "image wider than allowed",
			declared: { content_type: "image/png" },
			bytes: pngBytes(200, 1),
			vars: { MAX_IMAGE_WIDTH: "100" },
			message: /200x1/,
		},
		{
			name: "image smaller than allowed",
			declared: { content_type: "image/png" },
			bytes: pngBytes(2, 2),
			vars: { MIN_IMAGE_WIDTH: "16", MIN_IMAGE_HEIGHT: "16" },
			message: /2x2; accepted: 16x16/,
		},
		{
			name: "image header unreadable",
			declared: { content_type: "image/png" },
			bytes: badPng,
			message: /dimensions cannot be read/,
		},
		{
			name: "audio longer than allowed",
			declared: { content_type: "audio/wav" },
			bytes: wavBytes({ seconds: 2 }),
			vars: { MAX_AUDIO_SECONDS: "1" },
			message: /2\.0 s long; at most 1 s/,
		},
	];
	it.each(cases)("$name", async ({ declared, bytes, vars, message }) => {
		const { body } = await create(key, { filename: "f", size: bytes.length, ...declared }, vars);
		const objectKey = uploadKeyOf("scale", body.id);
		// Written straight to R2, as an R2 presigned PUT would (it cannot enforce the size).
		await env.BUCKET.put(objectKey, bytes);
		const detail = await expectProblem(await complete(key, body.id, vars), 422, "unprocessable");
		expect(detail).toMatch(message);
		await expectNothingStored(objectKey);
		expect((await getUpload(key, body.id)).status).toBe("failed");
	});
});

/** A fake origin for URL inputs: path → response (or a function of the request). */
function fakeFetch(routes: Record<string, () => Response | Promise<Response>>): typeof fetch {
	return (async (input: RequestInfo | URL, init?: RequestInit) => {
		const url = typeof input === "string" ? input : input instanceof URL ? input.toString() : input.url;
		expect(init?.redirect).toBe("manual");
		const route = routes[url];
		if (!route) return new Response("not found", { status: 404 });
		return route();
	}) as typeof fetch;
}
const redirect = (to: string) => () => new Response(null, { status: 302, headers: { location: to } });

/** URL inputs belong to an existing account (uploads reference accounts). */
async function newAccount(): Promise<string> {
	const account = `url-${crypto.randomUUID().slice(0, 8)}`;
	await env.DB.prepare("INSERT INTO accounts (id, created_at) VALUES (?, ?)")
		.bind(account, new Date().toISOString())
		.run();
	return account;
}

async function objectsOf(account: string): Promise<string[]> {
	const listed = await env.BUCKET.list({ prefix: `uploads/${account}/` });
	return listed.objects.map((o) => o.key);
}

describe("URL inputs", () => {
	it("fetches an https image into a ready upload", async () => {
		const png = pngBytes(5, 4);
		const fetcher = fakeFetch({
			"https://cdn.example.com/start.png": redirect("/img/cat.png"),
			"https://cdn.example.com/img/cat.png": () =>
				new Response(png, { headers: { "content-type": "image/png", "content-length": String(png.length) } }),
		});
		const result = await ingestUrlInput(env, "scale", "https://cdn.example.com/start.png", "image", { fetcher });
		if (!result.ok) throw new Error(result.message);
		expect(result.upload).toMatchObject({ content_type: "image/png", size: png.length });
		expect(result.upload.id).toMatch(/^upl_/);
		const row = await getUpload(key, result.upload.id);
		expect(row).toMatchObject({
			status: "ready",
			width: 5,
			height: 4,
			source_url: "https://cdn.example.com/start.png",
		});
	});

	it("streams a body without Content-Length", async () => {
		const wav = wavBytes({ seconds: 1 });
		const fetcher = fakeFetch({
			"https://a.example.com/s.wav": () =>
				new Response(new Blob([wav]).stream(), { headers: { "content-type": "audio/wav" } }),
		});
		const result = await ingestUrlInput(env, "scale", "https://a.example.com/s.wav", "audio", { fetcher });
		if (!result.ok) throw new Error(result.message);
		expect(result.upload.size).toBe(wav.length);
	});

	const png = pngBytes();
	const hostile: [string, string, Record<string, () => Response | Promise<Response>>, string, string][] = [
		["http", "http://example.com/a.png", {}, "unprocessable", "forbidden_url"],
		["loopback", "https://127.0.0.1/a.png", {}, "unprocessable", "forbidden_url"],
		["hex loopback", "https://0x7f000001/a.png", {}, "unprocessable", "forbidden_url"],
		["metadata", "https://169.254.169.254/latest/meta-data/", {}, "unprocessable", "forbidden_url"],
		["private", "https://10.0.0.5/a.png", {}, "unprocessable", "forbidden_url"],
		["IPv6 link-local", "https://[fe80::1]/a.png", {}, "unprocessable", "forbidden_url"],
		["internal name", "https://metadata.google.internal/", {}, "unprocessable", "forbidden_url"],
		[
			"redirect to metadata",
			"https://evil.example.com/r",
			{ "https://evil.example.com/r": redirect("https://169.254.169.254/latest/") },
			"unprocessable",
			"forbidden_url",
		],
		[
			"redirect to loopback over http",
			"https://evil.example.com/r",
			{ "https://evil.example.com/r": redirect("http://localhost:8787/v1/admin/keys") },
			"unprocessable",
			"forbidden_url",
		],
		[
			"second-hop redirect to private",
			"https://evil.example.com/1",
			{
				"https://evil.example.com/1": redirect("https://evil.example.com/2"),
				"https://evil.example.com/2": redirect("https://192.168.0.1/"),
			},
			"unprocessable",
			"forbidden_url",
		],
		[
			"more than 5 redirects",
			"https://loop.example.com/0",
			Object.fromEntries(Array.from({ length: 7 }, (_, i) => [`https://loop.example.com/${i}`, redirect(`/${i + 1}`)])),
			"invalid_request",
			"redirects",
		],
		["HTTP 404", "https://cdn.example.com/missing.png", {}, "invalid_request", "http_status"],
		[
			"Content-Length over the cap",
			"https://cdn.example.com/huge.png",
			{
				"https://cdn.example.com/huge.png": () =>
					new Response(png, { headers: { "content-length": String(png.length) } }),
			},
			"payload_too_large",
			"too_large",
		],
		[
			"streamed body over the cap",
			"https://cdn.example.com/stream.png",
			{ "https://cdn.example.com/stream.png": () => new Response(new Blob([png, png, png]).stream()) },
			"payload_too_large",
			"too_large",
		],
		[
			"not an image",
			"https://cdn.example.com/x.png",
			{ "https://cdn.example.com/x.png": () => new Response("<html>hi</html>") },
			"unsupported_media_type",
			"type",
		],
		[
			"audio where an image is expected",
			"https://cdn.example.com/a.wav",
			{ "https://cdn.example.com/a.wav": () => new Response(wavBytes()) },
			"unsupported_media_type",
			"type",
		],
		[
			"served type disagrees with the bytes",
			"https://cdn.example.com/j.png",
			{
				"https://cdn.example.com/j.png": () => new Response(jpegBytes(), { headers: { "content-type": "image/png" } }),
			},
			"unprocessable",
			"type",
		],
		[
			"image header unreadable",
			"https://cdn.example.com/bad.png",
			{
				"https://cdn.example.com/bad.png": () => {
					const b = pngBytes();
					b[12] = 0x58;
					return new Response(b);
				},
			},
			"unprocessable",
			"content",
		],
	];
	it.each(hostile)("refuses %s, storing nothing", async (_name, url, routes, code, reason) => {
		const account = await newAccount();
		const vars = reason === "too_large" ? { MAX_IMAGE_BYTES: String(png.length - 1) } : {};
		const result = await ingestUrlInput({ ...env, ...vars } as Env, account, url, "image", {
			fetcher: fakeFetch(routes),
		});
		expect(result.ok).toBe(false);
		if (result.ok) return;
		expect([result.code, result.reason]).toEqual([code, reason]);
		expect(result.message.length).toBeGreaterThan(10);
		expect(await objectsOf(account)).toEqual([]);
	});

	it("times out a slow origin, storing nothing", async () => {
		const fetcher = ((_url: string, init?: RequestInit) =>
			new Promise((_, reject) =>
				init?.signal?.addEventListener("abort", () => reject(init.signal?.reason)),
			)) as typeof fetch;
		const account = await newAccount();
		const result = await ingestUrlInput(env, account, "https://slow.example.com/a.png", "image", {
			fetcher,
			timeoutMs: 50,
		});
		expect(result.ok ? "ok" : result.reason).toBe("timeout");
		expect(await objectsOf(account)).toEqual([]);
	});

	it("loopback only with ALLOW_LOOPBACK_URL_INPUTS=true", async () => {
		const png = pngBytes();
		const fetcher = fakeFetch({ "http://127.0.0.1:9999/a.png": () => new Response(png) });
		const account = await newAccount();
		const denied = await ingestUrlInput(env, account, "http://127.0.0.1:9999/a.png", "image", { fetcher });
		expect(denied.ok).toBe(false);
		const allowed = await ingestUrlInput(
			{ ...env, ALLOW_LOOPBACK_URL_INPUTS: "true" } as Env,
			account,
			"http://127.0.0.1:9999/a.png",
			"image",
			{ fetcher },
		);
		expect(allowed.ok).toBe(true);
	});
});

describe("GPU output targets", () => {
	it("signs a capped PUT, a parts request only above it, and exact part URLs the Durable Object completes", async () => {
		const objectKey = "outputs/scale/job_1/video.mp4";
		const large = await signOutputTarget(env, "http://reelgate.test", objectKey, {
			maxSize: 100 * MiB,
			expiresInS: 600,
		});
		expect(large.put.headers).toEqual({ "content-type": "video/mp4" });
		// A Worker-signed PUT crosses the Worker: one part's size at most; above it, part URLs on request.
		expect(large.put.max_size).toBe(OUTPUT_PART_BYTES);
		expect(large.parts_url?.url).toMatch(/^http:\/\/reelgate\.test\/v1\/storage\/.*method=POST/);

		const upload = await env.BUCKET.createMultipartUpload(objectKey);
		const video = new Uint8Array(5 * MiB + 1000).fill(7);
		const signed = await signOutputParts(
			env,
			"http://reelgate.test",
			objectKey,
			upload.uploadId,
			video.length,
			5 * MiB,
			600,
		);
		expect(signed.part_size).toBe(5 * MiB);
		const [p1, p2] = signed.parts;
		expect(signed.parts.map((p) => p.part_number)).toEqual([1, 2]);
		const r1 = await call(p1?.url as string, { method: "PUT", headers: p1?.headers, body: video.slice(0, 5 * MiB) });
		// Each part URL is for its exact byte count.
		await expectProblem(
			await call(p2?.url as string, { method: "PUT", body: new Uint8Array(1001) }),
			400,
			"invalid_request",
		);
		const r2 = await call(p2?.url as string, { method: "PUT", headers: p2?.headers, body: video.slice(5 * MiB) });
		const done = await completeOutputMultipart(env, objectKey, upload.uploadId, [
			{ part_number: 2, etag: r2.headers.get("etag") as string },
			{ part_number: 1, etag: r1.headers.get("etag") as string },
		]);
		expect(done.ok).toBe(true);
		expect((await env.BUCKET.head(objectKey))?.size).toBe(video.length);

		// The single PUT is capped at maxSize.
		const small = await signOutputTarget(env, "http://reelgate.test", "outputs/scale/job_2/video.mp4", {
			maxSize: 1000,
			expiresInS: 600,
		});
		expect(small.put.max_size).toBe(1000);
		expect(small.parts_url).toBeUndefined();
		await expectProblem(
			await call(small.put.url, {
				method: "PUT",
				headers: small.put.headers,
				body: new Uint8Array(1001),
			}),
			413,
			"payload_too_large",
		);
		expect(
			(
				await call(small.put.url, {
					method: "PUT",
					headers: small.put.headers,
					body: new Uint8Array(999),
				})
			).status,
		).toBe(200);
	});

	it("refuses parts with gaps", async () => {
		const result = await completeOutputMultipart(env, "outputs/x", "nope", [{ part_number: 2, etag: "e" }]);
		expect(result).toMatchObject({ ok: false, reason: "gap" });
	});
});
