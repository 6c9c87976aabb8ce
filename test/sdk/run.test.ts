// `run` (upload, create, follow, the video) and the Node entry (environment, the local stack's record, file paths),
// against a scripted API on loopback.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { JobFailedError, Reelgate as PortableReelgate, ReelgateConnectionError } from "../../sdk/index.ts";
import { MissingApiKeyError, Reelgate } from "../../sdk/node.ts";
import { makePng, makeWav } from "../e2e/media";
import { fakeApi, type Handler, job, json, problem, type Seen } from "./fake-api.ts";

const FAST = { baseDelayMs: 5, maxDelayMs: 50 };
const dir = mkdtempSync(path.join(tmpdir(), "reelgate-sdk-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let api: Awaited<ReturnType<typeof fakeApi>> | undefined;
afterEach(async () => {
	await api?.close();
	api = undefined;
});

/** An API that takes uploads (single PUT), starts jobs, streams their events to `final`, and serves a video. */
function scriptedApi(final: "succeeded" | "failed"): Handler {
	let uploads = 0;
	return (req, res) => {
		const base = api?.url ?? "";
		if (req.method === "POST" && req.path === "/v1/uploads") {
			uploads++;
			return json(res, 201, {
				id: `upl_${uploads}`,
				status: "pending",
				upload: { method: "PUT", url: `${base}/put/${uploads}?sig=secret`, headers: {} },
			});
		}
		if (req.method === "PUT") return json(res, 200, {});
		if (req.path.endsWith("/complete")) return json(res, 200, { id: req.path.split("/")[3], status: "ready" });
		if (req.method === "POST" && req.path === "/v1/jobs") return json(res, 202, job("job_run", "queued", 0));
		if (req.path === "/v1/jobs/job_run/events") {
			const end =
				final === "succeeded"
					? job("job_run", "succeeded", 100)
					: { ...job("job_run", "failed", 40), error: { code: "inference_failed", message: "out of memory" } };
			res.writeHead(200, { "content-type": "text/event-stream" });
			res.write(`id: 1\nevent: progress\ndata: ${JSON.stringify(job("job_run", "running", 40))}\n\n`);
			res.end(`id: 2\nevent: status\ndata: ${JSON.stringify(end)}\n\n`);
			return;
		}
		if (req.path === "/v1/jobs/job_run/video") {
			res.writeHead(200, { "content-type": "video/mp4" });
			res.end("not really an mp4");
			return;
		}
		problem(res, 404, "not_found", `${req.method} ${req.path}`);
	};
}

const declared = (s: Seen | undefined) => JSON.parse(s?.body.toString() ?? "{}");

describe("run", () => {
	it("uploads each file, starts the job with an idempotency key, follows it and downloads its video", async () => {
		api = await fakeApi(scriptedApi("succeeded"));
		const client = new PortableReelgate({ baseUrl: api.url, apiKey: "rg_test", retry: FAST });
		const seen: string[] = [];
		const job = await client.run(
			"preview",
			{ image: new Blob([makePng(8, 8)]), audio: { data: makeWav(1), filename: "voice.wav" }, duration_s: 2 },
			{
				onProgress: (p) =>
					seen.push(p.stage === "upload" ? `upload ${p.input} ${p.sent}/${p.total}` : `job ${p.job.status}`),
			},
		);
		expect(job.status).toBe("succeeded");
		const creates = api.seen.filter((s) => s.path === "/v1/uploads");
		// A Blob without a type is named for its input and typed from its bytes; a name gives the type.
		expect(declared(creates[0])).toMatchObject({ filename: "upload", content_type: "image/png" });
		expect(declared(creates[1])).toMatchObject({ filename: "voice.wav", content_type: "audio/wav" });
		const create = api.seen.find((s) => s.path === "/v1/jobs");
		expect(declared(create)).toEqual({
			model: "preview",
			input: { duration_s: 2, image: "upl_1", audio: "upl_2" },
		});
		expect(create?.headers["idempotency-key"]).toMatch(/^[0-9a-f-]{36}$/);
		expect(seen.filter((s) => s.startsWith("upload image")).at(-1)).toMatch(/^upload image (\d+)\/\1$/);
		expect(seen.slice(-2)).toEqual(["job running", "job succeeded"]);

		const chunks: string[] = [];
		const bytes = await job.download(
			new WritableStream({ write: (c: Uint8Array) => void chunks.push(new TextDecoder().decode(c)) }),
		);
		expect([bytes, chunks.join("")]).toEqual([17, "not really an mp4"]);
		// The helper does not change the job's JSON.
		expect(Object.keys(JSON.parse(JSON.stringify(job)))).not.toContain("download");
	});

	it("passes upload ids and URLs through without uploading", async () => {
		api = await fakeApi(scriptedApi("succeeded"));
		const client = new PortableReelgate({ baseUrl: api.url, apiKey: "rg_test", retry: FAST });
		await client.run("preview", { image: "upl_abc", audio: new URL("https://media.example/voice.wav") });
		expect(api.seen.filter((s) => s.path === "/v1/uploads")).toEqual([]);
		expect(declared(api.seen.find((s) => s.path === "/v1/jobs")).input).toEqual({
			image: "upl_abc",
			audio: "https://media.example/voice.wav",
		});
	});

	it("rejects with JobFailedError carrying the job when it fails", async () => {
		api = await fakeApi(scriptedApi("failed"));
		const client = new PortableReelgate({ baseUrl: api.url, apiKey: "rg_test", retry: FAST });
		const err = await client.run("preview", { image: "upl_abc" }).catch((e: unknown) => e);
		expect(err).toBeInstanceOf(JobFailedError);
		expect((err as JobFailedError).job.error?.code).toBe("inference_failed");
		expect((err as Error).message).toContain("out of memory");
	});

	it("needs Node for a file path", async () => {
		api = await fakeApi(scriptedApi("succeeded"));
		const client = new PortableReelgate({ baseUrl: api.url, apiKey: "rg_test", retry: FAST });
		await expect(client.run("preview", { image: "still.png" })).rejects.toThrow(/sdk\/node\.ts/);
	});
});

describe("a request that gets no answer", () => {
	it("names the URL it tried, not a bare 'fetch failed'", async () => {
		api = await fakeApi(() => {});
		const url = api.url;
		await api.close();
		api = undefined;
		const client = new PortableReelgate({ baseUrl: url, apiKey: "rg_test", retry: { ...FAST, maxRetries: 1 } });
		const err = await client.getJob("job_x").catch((e: unknown) => e);
		expect(err).toBeInstanceOf(ReelgateConnectionError);
		expect((err as Error).message).toContain(`Cannot reach the Reelgate API at ${url} (ECONNREFUSED)`);
	});

	it("names only the origin of a signed upload URL", async () => {
		api = await fakeApi((req, res) => {
			if (req.path === "/v1/uploads")
				return json(res, 201, {
					id: "upl_1",
					status: "pending",
					upload: { method: "PUT", url: "http://127.0.0.1:9/put?X-Amz-Signature=secret", headers: {} },
				});
			problem(res, 404, "not_found", req.path);
		});
		const client = new PortableReelgate({ baseUrl: api.url, apiKey: "rg_test", retry: { ...FAST, maxRetries: 0 } });
		const err = (await client.upload(new Blob([makePng(4, 4)])).catch((e: unknown) => e)) as Error;
		expect(err.message).toContain("http://127.0.0.1:9");
		expect(err.message).not.toContain("secret");
	});
});

describe("the Node entry", () => {
	const env = { ...process.env };
	afterEach(() => {
		process.env = { ...env };
	});

	it("takes the URL from the local stack's record and the key from REELGATE_API_KEY", async () => {
		api = await fakeApi((_req, res) => json(res, 200, job("job_n", "running", 5)));
		const record = path.join(dir, "local.json");
		writeFileSync(record, JSON.stringify({ url: api.url, admin_token_file: "/nowhere", pid: 1 }));
		process.env = { ...env, REELGATE_LOCAL_FILE: record, REELGATE_API_KEY: "rg_env" };
		delete process.env.REELGATE_URL;
		delete process.env.REELGATE_PORT;
		const client = new Reelgate();
		expect(client.baseUrl).toBe(api.url);
		expect((await client.getJob("job_n")).status).toBe("running");
		expect(api.seen[0]?.headers.authorization).toBe("Bearer rg_env");
		// REELGATE_URL wins over the record.
		process.env.REELGATE_URL = "http://127.0.0.1:1/";
		expect(new Reelgate().baseUrl).toBe("http://127.0.0.1:1");
	});

	it("says how to get a key when there is none", () => {
		process.env = { ...env };
		delete process.env.REELGATE_API_KEY;
		expect(() => new Reelgate({ baseUrl: "http://127.0.0.1:1" })).toThrow(MissingApiKeyError);
		expect(() => new Reelgate({ baseUrl: "http://127.0.0.1:1" })).toThrow(/npm run keys -- create/);
	});

	it("says where the URL came from when nothing answers there", async () => {
		process.env = { ...env, REELGATE_URL: "http://127.0.0.1:9", REELGATE_API_KEY: "rg_x" };
		const err = await new Reelgate({ retry: { ...FAST, maxRetries: 0 } }).getJob("job_x").catch((e: unknown) => e);
		expect((err as Error).message).toMatch(/127\.0\.0\.1:9 .*from REELGATE_URL.*--url or REELGATE_URL/);
	});

	it("uploads files by path with their type and SHA-256, and saves the video to a file", async () => {
		api = await fakeApi(scriptedApi("succeeded"));
		const image = path.join(dir, "still.png");
		writeFileSync(image, makePng(16, 16));
		const client = new Reelgate({ baseUrl: api.url, apiKey: "rg_test", retry: FAST });
		const done = await client.run("preview", { image });
		const created = declared(api.seen.find((s) => s.path === "/v1/uploads"));
		expect(created).toMatchObject({ filename: "still.png", content_type: "image/png", size: makePng(16, 16).length });
		expect(created.sha256).toMatch(/^[0-9a-f]{64}$/);
		const put = api.seen.find((s) => s.method === "PUT");
		expect(Buffer.compare(put?.body ?? Buffer.alloc(0), readFileSync(image))).toBe(0);
		const out = path.join(dir, "video.mp4");
		expect(await done.download(out)).toBe(17);
		expect(readFileSync(out, "utf8")).toBe("not really an mp4");
		expect(await client.saveVideo("job_run", out)).toBe(17);
	});
});
