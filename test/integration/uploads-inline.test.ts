/**
 * A small file in one request (`POST /v1/uploads/inline`): stored, verified and pinned like any upload, answered
 * ready; refusals are problems that leave nothing stored; a job takes the upload like any other.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { getReadyUpload } from "../../src/db/uploads";
import { ADMIN, call, newAccount } from "../helpers/api";
import { noiseBytes, pngBytes, sha256Hex, wavBytes } from "../helpers/media";
import { expectProblem } from "../helpers/security";

let auth: Record<string, string>;
beforeAll(async () => {
	auth = await newAccount("inline");
});

function send(bytes: Uint8Array, type: string, query = "filename=fox.png", headers: Record<string, string> = {}) {
	return call(`/v1/uploads/inline?${query}`, {
		method: "POST",
		headers: {
			authorization: auth.authorization ?? "",
			"content-type": type,
			"content-length": String(bytes.length),
			...headers,
		},
		body: bytes,
	});
}

async function storedUnder(account: string): Promise<string[]> {
	const listed = await env.BUCKET.list({ prefix: `uploads/${account}/` });
	return listed.objects.map((o) => o.key);
}

describe("POST /v1/uploads/inline", () => {
	it("stores, verifies and answers a ready upload in one request; a job takes it", async () => {
		const png = pngBytes(2, 2, [10, 20, 30]);
		const res = await send(png, "image/png");
		expect(res.status).toBe(201);
		const upload = (await res.json()) as { id: string; status: string; sha256: string; size: number; filename: string };
		expect(upload).toMatchObject({
			status: "ready",
			size: png.length,
			filename: "fox.png",
			sha256: await sha256Hex(png),
		});
		const ready = await getReadyUpload(env.DB, "inline", upload.id);
		expect(ready?.object_key).toMatch(/^verified\//);

		const job = await call("/v1/jobs", {
			method: "POST",
			headers: auth,
			body: JSON.stringify({ model: "preview", input: { image: upload.id } }),
		});
		// Accepted, or refused only for want of a backend in this file's setup: never for the upload itself.
		expect([202, 422]).toContain(job.status);
		if (job.status === 422) expect(((await job.json()) as { code: string }).code).toBe("model_unavailable");
	});

	it("takes files over the 1 MiB JSON body limit, up to its own cap", async () => {
		const wav = wavBytes({ seconds: 12, sampleRate: 48000, channels: 1 });
		expect(wav.length).toBeGreaterThan(1024 * 1024);
		const res = await send(wav, "audio/wav", "filename=voice.wav");
		expect(res.status).toBe(201);
		expect(((await res.json()) as { duration_s: number }).duration_s).toBeCloseTo(12, 1);
	});

	it("answers bytes it already has (same SHA-256) with that upload, without reading the body", async () => {
		const png = pngBytes(2, 2, [40, 50, 60]);
		const sha = await sha256Hex(png);
		const first = (await (await send(png, "image/png", `filename=a.png&sha256=${sha}`)).json()) as { id: string };
		const again = await send(png, "image/png", `filename=b.png&sha256=${sha}`);
		expect(again.status).toBe(200);
		expect(await again.json()).toMatchObject({ id: first.id, deduplicated: true });
	});

	it("refuses what it cannot accept, leaving nothing stored", async () => {
		const png = pngBytes(2, 2, [70, 80, 90]);
		const before = await storedUnder("inline");
		await expectProblem(await send(png, "text/plain"), 415, "unsupported_media_type");
		await expectProblem(await send(png, "image/jpeg"), 422, "unprocessable");
		await expectProblem(await send(noiseBytes(9 * 1024 * 1024), "image/png"), 413, "payload_too_large");
		await expectProblem(await send(png, "image/png", `filename=c.png&sha256=${"0".repeat(64)}`), 422, "unprocessable");
		const { detail } = await expectProblem(await send(png, "image/png", "sha256=zz"), 400, "invalid_request");
		expect(detail).toMatch(/filename/);
		const streamed = await call("/v1/uploads/inline?filename=d.png", {
			method: "POST",
			headers: { authorization: auth.authorization ?? "", "content-type": "image/png" },
			body: new ReadableStream({
				start(c) {
					c.enqueue(png);
					c.close();
				},
			}),
			duplex: "half",
		} as RequestInit);
		expect((await expectProblem(streamed, 400, "invalid_request")).detail).toMatch(/Content-Length/);
		// A Content-Length that understates the body: the stream is cut at the declared length, nothing is kept.
		let pulled = 0;
		const lying = await call("/v1/uploads/inline?filename=e.png", {
			method: "POST",
			headers: { authorization: auth.authorization ?? "", "content-type": "image/png", "content-length": "100" },
			body: new ReadableStream<Uint8Array>(
				{
					pull(c) {
						if (pulled >= 8 * 1024 * 1024) return c.close();
						const chunk = noiseBytes(64 * 1024, pulled + 1);
						pulled += chunk.length;
						c.enqueue(chunk);
					},
				},
				{ highWaterMark: 0 },
			),
			duplex: "half",
		} as RequestInit);
		await expectProblem(lying, 400, "invalid_request");
		expect(pulled).toBeLessThanOrEqual(4 * 64 * 1024);
		expect(await storedUnder("inline")).toEqual(before);
	});

	it("needs the jobs:write scope, and is declared in /openapi.json", async () => {
		const created = await call("/v1/admin/keys", {
			method: "POST",
			headers: ADMIN,
			body: JSON.stringify({ name: "reader", account: "inline", scopes: ["jobs:read"] }),
		});
		const { key } = (await created.json()) as { key: string };
		const png = pngBytes();
		const res = await call("/v1/uploads/inline?filename=a.png", {
			method: "POST",
			headers: { authorization: `Bearer ${key}`, "content-type": "image/png", "content-length": String(png.length) },
			body: png,
		});
		await expectProblem(res, 403, "forbidden");
		const doc = (await (await call("/openapi.json")).json()) as {
			paths: Record<string, { post?: { requestBody?: { content: Record<string, unknown> } } }>;
		};
		expect(Object.keys(doc.paths["/v1/uploads/inline"]?.post?.requestBody?.content ?? {})).toContain("image/png");
	});
});
