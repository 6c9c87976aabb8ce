import { afterEach, describe, expect, it } from "vitest";
import { parseRetryAfter, Reelgate, ReelgateError, retryDelayMs } from "../../sdk/index.ts";
import { fakeApi, type Handler, job, json, problem } from "./fake-api.ts";

const FAST = { baseDelayMs: 10, maxDelayMs: 2000 };
let api: Awaited<ReturnType<typeof fakeApi>> | undefined;
afterEach(async () => {
	await api?.close();
	api = undefined;
});

async function clientFor(handler: Handler) {
	api = await fakeApi(handler);
	return new Reelgate({ baseUrl: `${api.url}/`, apiKey: "rg_test", retry: FAST });
}

describe("retries", () => {
	it("retries 503s with backoff and returns the answer once the server recovers", async () => {
		const client = await clientFor((_req, res, n) =>
			n < 3 ? problem(res, 503, "backend_unavailable", "down") : json(res, 200, job("job_a", "queued", 0)),
		);
		const got = await client.getJob("job_a");
		expect(got.id).toBe("job_a");
		expect(api?.seen.length).toBe(3);
		expect(api?.seen[0]?.headers.authorization).toBe("Bearer rg_test");
	});

	it("honours Retry-After on 429", async () => {
		const client = await clientFor((_req, res, n) =>
			n === 1
				? problem(res, 429, "rate_limited", "slow down", { "retry-after": "1" })
				: json(res, 200, { data: [], next_cursor: null }),
		);
		const started = Date.now();
		await client.listJobs({ limit: 10 });
		expect(Date.now() - started).toBeGreaterThanOrEqual(950);
		expect(api?.seen[1]?.path).toBe("/v1/jobs?limit=10");
	});

	it("retries a dropped connection", async () => {
		const client = await clientFor((_req, res, n) => {
			if (n === 1) return void res.socket?.destroy();
			json(res, 200, job("job_b", "running", 10));
		});
		expect((await client.getJob("job_b")).status).toBe("running");
	});

	it("gives up after the retries and throws the problem", async () => {
		const client = await clientFor((_req, res) => problem(res, 503, "backend_unavailable", "still down"));
		const err = await client.getJob("job_c").catch((e: unknown) => e);
		expect(err).toBeInstanceOf(ReelgateError);
		expect((err as ReelgateError).problem.detail).toBe("still down");
		expect((err as ReelgateError).status).toBe(503);
		expect(api?.seen.length).toBe(5);
	});

	it("does not retry a 4xx, and carries its problem", async () => {
		const client = await clientFor((_req, res) => problem(res, 404, "not_found", "Job not found."));
		const err = (await client.getJob("job_d").catch((e: unknown) => e)) as ReelgateError;
		expect([err.code, err.status, err.problem.detail]).toEqual(["not_found", 404, "Job not found."]);
		expect(api?.seen.length).toBe(1);
	});

	it("computes Retry-After and backoff", () => {
		expect(parseRetryAfter("3")).toBe(3000);
		expect(parseRetryAfter(new Date(Date.now() + 5000).toUTCString())).toBeGreaterThan(3000);
		expect(parseRetryAfter("soon")).toBeUndefined();
		const opts = { maxRetries: 3, baseDelayMs: 100, maxDelayMs: 1000 };
		expect(retryDelayMs(0, undefined, opts, () => 1)).toBe(100);
		expect(retryDelayMs(10, undefined, opts, () => 1)).toBe(1000);
		expect(retryDelayMs(0, 60_000, opts)).toBe(1000);
	});
});

describe("uploadFile", () => {
	it("sends a small file in one request (POST /v1/uploads/inline) and reports progress", async () => {
		const client = await clientFor((req, res) => {
			if (req.method === "POST" && req.path.startsWith("/v1/uploads/inline")) {
				return json(res, 201, { id: "upl_i", status: "ready", size: req.body.length });
			}
			problem(res, 404, "not_found", req.path);
		});
		const bytes = new Uint8Array(200_000).map((_, i) => i % 251);
		const progress: number[] = [];
		const ready = await client.uploadFile(bytes, {
			filename: "a b.png",
			contentType: "image/png",
			onProgress: (sent) => progress.push(sent),
		});
		expect(ready).toMatchObject({ id: "upl_i", status: "ready" });
		const seen = api?.seen ?? [];
		expect(seen).toHaveLength(1);
		const query = new URL(`http://x${seen[0]?.path ?? ""}`).searchParams;
		expect(query.get("filename")).toBe("a b.png");
		expect(query.get("sha256")).toMatch(/^[0-9a-f]{64}$/);
		expect(seen[0]?.headers["content-type"]).toBe("image/png");
		expect(seen[0]?.headers["content-length"]).toBe("200000");
		expect(Buffer.compare(seen[0]?.body ?? Buffer.alloc(0), Buffer.from(bytes))).toBe(0);
		expect(progress.at(-1)).toBe(200_000);
	});

	it("on a server without the one-request route: creates, PUTs (retrying a 502), reports progress, and completes", async () => {
		let puts = 0;
		const client = await clientFor((req, res) => {
			const base = api?.url ?? "";
			if (req.method === "POST" && req.path === "/v1/uploads") {
				return json(res, 201, {
					id: "upl_x",
					status: "pending",
					upload: { method: "PUT", url: `${base}/put/upl_x`, headers: { "content-type": "image/png" } },
				});
			}
			if (req.method === "PUT") {
				puts++;
				if (puts === 1) return problem(res, 502, "internal", "bad gateway");
				return json(res, 200, { size: req.body.length });
			}
			if (req.path === "/v1/uploads/upl_x/complete") return json(res, 200, { id: "upl_x", status: "ready" });
			problem(res, 404, "not_found", req.path);
		});
		const bytes = new Uint8Array(200_000).map((_, i) => i % 251);
		const progress: number[] = [];
		const ready = await client.uploadFile(bytes, {
			filename: "a.png",
			contentType: "image/png",
			onProgress: (sent) => progress.push(sent),
		});
		expect(ready.status).toBe("ready");
		const [inline, create, , put] = api?.seen ?? [];
		expect(inline?.path).toMatch(/^\/v1\/uploads\/inline\?/);
		const declared = JSON.parse(create?.body.toString() ?? "{}");
		expect(declared).toMatchObject({ filename: "a.png", content_type: "image/png", size: 200_000 });
		expect(declared.sha256).toMatch(/^[0-9a-f]{64}$/);
		expect(put?.headers["content-length"]).toBe("200000");
		expect(put?.headers["content-type"]).toBe("image/png");
		expect(Buffer.compare(put?.body ?? Buffer.alloc(0), Buffer.from(bytes))).toBe(0);
		expect(progress.at(-1)).toBe(200_000);
		expect(progress.some((p) => p > 0 && p < 200_000)).toBe(true);
	});

	it("PUTs each part of a multipart target at its offset, then completes", async () => {
		const client = await clientFor((req, res) => {
			const base = api?.url ?? "";
			if (req.method === "POST" && req.path === "/v1/uploads") {
				return json(res, 201, {
					id: "upl_m",
					status: "pending",
					upload: { method: "PUT", headers: {}, expires_at: "2030-01-01T00:00:00Z" },
					multipart: {
						upload_id: "mp1",
						part_size: 4,
						part_count: 3,
						parts_stored: [],
						parts_missing: [1, 2, 3],
						parts: [1, 2, 3].map((n) => ({
							part_number: n,
							size: n === 3 ? 2 : 4,
							method: "PUT",
							url: `${base}/part/${n}`,
							headers: { "x-part": String(n) },
						})),
					},
				});
			}
			if (req.method === "PUT") return json(res, 200, {});
			// A server whose one-request route takes less than this file.
			if (req.path.startsWith("/v1/uploads/inline")) return problem(res, 413, "payload_too_large", "too large");
			return json(res, 200, { id: "upl_m", status: "ready" });
		});
		const progress: number[] = [];
		await client.uploadFile(new Blob(["aaaabbbbcc"]), {
			filename: "a.wav",
			contentType: "audio/wav",
			onProgress: (sent) => progress.push(sent),
		});
		const puts = api?.seen.filter((s) => s.method === "PUT") ?? [];
		expect(puts.map((p) => [p.path, p.body.toString(), p.headers["x-part"]])).toEqual([
			["/part/1", "aaaa", "1"],
			["/part/2", "bbbb", "2"],
			["/part/3", "cc", "3"],
		]);
		expect(api?.seen.at(-1)?.path).toBe("/v1/uploads/upl_m/complete");
		expect(progress.at(-1)).toBe(10);
	});

	it("sends nothing when the server already has these bytes (deduplicated)", async () => {
		const client = await clientFor((_req, res) =>
			json(res, 200, { id: "upl_old", status: "ready", deduplicated: true, size: 3 }),
		);
		const got = await client.uploadFile(new Uint8Array([1, 2, 3]), { filename: "a.png", contentType: "image/png" });
		expect(got).toMatchObject({ id: "upl_old", status: "ready" });
		expect(api?.seen.map((s) => s.method)).toEqual(["POST"]);
	});
});

describe("createJob", () => {
	it("always sends an Idempotency-Key, so a retried create cannot start two jobs", async () => {
		const client = await clientFor((_req, res, n) =>
			n === 1 ? problem(res, 503, "backend_unavailable", "x") : json(res, 202, job("job_i", "queued", 0)),
		);
		await client.createJob({ model: "preview", input: { image: "upl_x" } });
		const [first, second] = api?.seen ?? [];
		expect(first?.headers["idempotency-key"]).toBeTruthy();
		expect(second?.headers["idempotency-key"]).toBe(first?.headers["idempotency-key"]);
		await client.createJob({ model: "preview", input: { image: "upl_x" } }, { idempotencyKey: "mine" });
		expect(api?.seen.at(-1)?.headers["idempotency-key"]).toBe("mine");
	});
});

describe("waitForJob", () => {
	it("follows the event stream to a terminal status", async () => {
		const client = await clientFor((req, res) => {
			if (req.path.endsWith("/events")) {
				res.writeHead(200, { "content-type": "text/event-stream" });
				res.write(`: hi\n\nid: 1\nevent: status\ndata: ${JSON.stringify(job("job_s", "running", 0))}\n\n`);
				res.write(`id: 2\nevent: progress\ndata: ${JSON.stringify(job("job_s", "running", 50))}\n\n`);
				res.end(`id: 3\nevent: status\ndata: ${JSON.stringify(job("job_s", "succeeded", 100))}\n\n`);
				return;
			}
			problem(res, 500, "internal", "unexpected");
		});
		const events: string[] = [];
		const done = await client.waitForJob("job_s", {
			onEvent: (e) => events.push(`${e.type}:${e.job.progress.percent}:${e.source}`),
		});
		expect(done.status).toBe("succeeded");
		expect(events).toEqual(["status:0:stream", "progress:50:stream", "status:100:stream"]);
		expect(api?.seen[0]?.headers.authorization).toBe("Bearer rg_test");
	});

	it("resumes a broken stream with Last-Event-ID", async () => {
		let streams = 0;
		const client = await clientFor((req, res) => {
			if (req.path.endsWith("/events")) {
				streams++;
				res.writeHead(200, { "content-type": "text/event-stream" });
				if (streams === 1)
					res.end(`retry: 20\nid: 5\nevent: progress\ndata: ${JSON.stringify(job("job_r", "running", 40))}\n\n`);
				else res.end(`id: 6\nevent: status\ndata: ${JSON.stringify(job("job_r", "succeeded", 100))}\n\n`);
				return;
			}
			json(res, 200, job("job_r", "running", 40));
		});
		expect((await client.waitForJob("job_r")).status).toBe("succeeded");
		const resumed = api?.seen.filter((s) => s.path.endsWith("/events"))[1];
		expect(resumed?.headers["last-event-id"]).toBe("5");
	});

	it("falls back to polling when the events route answers 404", async () => {
		let polls = 0;
		const client = await clientFor((req, res) => {
			if (req.path.endsWith("/events")) return problem(res, 404, "not_found", "No route");
			polls++;
			json(res, 200, job("job_p", polls < 3 ? "running" : "succeeded", polls * 30));
		});
		const events: string[] = [];
		const done = await client.waitForJob("job_p", {
			pollIntervalMs: 10,
			onEvent: (e) => events.push(`${e.type}:${e.job.status}`),
		});
		expect(done.status).toBe("succeeded");
		expect(events).toEqual(["status:running", "progress:running", "status:succeeded"]);
	});

	it("stops at timeoutMs", async () => {
		const client = await clientFor((req, res) => {
			if (req.path.endsWith("/events")) return problem(res, 405, "method_not_allowed", "no");
			json(res, 200, job("job_t", "running", 1));
		});
		await expect(client.waitForJob("job_t", { timeoutMs: 100, pollIntervalMs: 10 })).rejects.toMatchObject({
			name: "TimeoutError",
		});
	});
});

describe("downloadVideo", () => {
	it("sends Range and returns the body stream", async () => {
		const client = await clientFor((_req, res) => {
			res.writeHead(206, { "content-type": "video/mp4", "content-range": "bytes 0-3/10" });
			res.end("abcd");
		});
		const body = await client.downloadVideo("job_v", { range: { start: 0, end: 3 } });
		expect(await new Response(body).text()).toBe("abcd");
		expect(api?.seen[0]?.headers.range).toBe("bytes=0-3");
	});

	it("throws the problem when the video is not ready", async () => {
		const client = await clientFor((_req, res) => problem(res, 409, "not_ready", "The job is running."));
		await expect(client.downloadVideo("job_v")).rejects.toMatchObject({ code: "not_ready", status: 409 });
	});
});

describe("checking a job against the catalog before sending it", () => {
	const model = (availability: Record<string, unknown>) => ({
		id: "wan",
		inputs: { image: { required: true } },
		parameters: { type: "object", properties: {} },
		...availability,
	});

	it("refuses a model no enabled backend serves as the API does: 422 model_unavailable naming the field", async () => {
		const unserved = { available: false, accepting_jobs: false, unavailable_reason: "no enabled backend serves it" };
		const client = await clientFor((_req, res) => json(res, 200, model(unserved)));
		const err = (await client.checkRunnable("wan", { image: "upl_a" }).catch((e: unknown) => e)) as ReelgateError;
		expect([err.status, err.code]).toEqual([422, "model_unavailable"]);
		expect(err.fieldErrors).toEqual([{ path: "json.model", field: "model", message: "no enabled backend serves it" }]);
		expect(err.problem.detail).toBe("wan is not available: no enabled backend serves it");
	});

	it("passes a model whose backends are only unhealthy: the API accepts the job, which waits", async () => {
		const failing = { available: false, accepting_jobs: true, unavailable_reason: "every backend is failing" };
		const client = await clientFor((_req, res) => json(res, 200, model(failing)));
		await expect(client.checkRunnable("wan", { image: "upl_a" })).resolves.toBeUndefined();
	});
});
