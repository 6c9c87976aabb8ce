// The whole flow against the real local stack, as a client would drive it: key, uploads, job, video.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nodeBinary, ROOT } from "../../scripts/lib/paths.mjs";
import { freePort } from "../../scripts/lib/wait.mjs";
import { makePng, makeWav } from "./media";
import { portsFree, type Stack, startStack } from "./stack";

interface Upload {
	id: string;
	status: string;
	size: number;
	upload: { method: string; url: string; headers: Record<string, string> };
}
interface Job {
	id: string;
	status: string;
	error?: { code: string; message: string };
	output?: { video: { url: string; content_type: string; size: number; sha256?: string } };
	links: { self: string; video: string };
}

function keysCli(args: string[], env: Record<string, string> = {}) {
	return spawnSync(nodeBinary(), [path.join(ROOT, "scripts", "keys.mjs"), ...args], {
		cwd: ROOT,
		env: { ...process.env, ...env },
		encoding: "utf8",
		timeout: 30_000,
	});
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let stack: Stack;
let apiKey = "";
let job: Job;
let video: Buffer;

async function api(method: string, p: string, body?: unknown, headers: Record<string, string> = {}) {
	const res = await fetch(`${stack.url}${p}`, {
		method,
		headers: {
			authorization: `Bearer ${apiKey}`,
			...(body === undefined ? {} : { "content-type": "application/json" }),
			...headers,
		},
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	return res;
}

async function upload(filename: string, contentType: string, bytes: Buffer): Promise<Upload> {
	const created = await api("POST", "/v1/uploads", {
		filename,
		content_type: contentType,
		size: bytes.length,
		sha256: sha256(bytes),
	});
	expect(created.status, await created.clone().text()).toBe(201);
	const u = (await created.json()) as Upload;
	expect(u.id).toMatch(/^upl_/);
	expect(u.status).toBe("pending");
	const put = await fetch(u.upload.url, { method: u.upload.method, headers: u.upload.headers, body: bytes });
	expect(put.ok, `PUT ${u.upload.url}: ${put.status} ${await put.text()}`).toBe(true);
	const done = await api("POST", `/v1/uploads/${u.id}/complete`);
	expect(done.status, await done.clone().text()).toBe(200);
	const ready = (await done.json()) as Upload;
	expect(ready.status).toBe("ready");
	return ready;
}

beforeAll(async () => {
	stack = await startStack();
	const res = await fetch(`${stack.url}/v1/admin/keys`, {
		method: "POST",
		headers: { authorization: `Bearer ${stack.adminToken}`, "content-type": "application/json" },
		body: JSON.stringify({ name: "e2e" }),
	});
	expect(res.status, await res.clone().text()).toBe(201);
	apiKey = ((await res.json()) as { key: string }).key;
});

afterAll(async () => {
	if (!stack) return;
	await stack.stop();
	stack.cleanup();
});

describe("the local stack", () => {
	it("is healthy and has the GPU worker registered as a backend", async () => {
		expect((await fetch(`${stack.url}/healthz`)).status).toBe(200);
		expect(stack.output()).not.toContain("could not register the GPU worker");
		const res = await fetch(`${stack.url}/v1/admin/backends`, {
			headers: { authorization: `Bearer ${stack.adminToken}` },
		});
		expect(res.status).toBe(200);
		const { data } = (await res.json()) as { data: { name: string; kind: string }[] };
		expect(data.find((b) => b.name === "local")?.kind).toBe("pod");
	});

	it("serves the demo page and its files with the security headers (web/_headers)", async () => {
		for (const file of ["/", "/app.js"]) {
			const res = await fetch(`${stack.url}${file}`);
			expect(res.status).toBe(200);
			await res.arrayBuffer();
			expect(res.headers.get("x-content-type-options")).toBe("nosniff");
			expect(res.headers.get("x-frame-options")).toBe("DENY");
			expect(res.headers.get("referrer-policy")).toBe("no-referrer");
			expect(res.headers.get("strict-transport-security")).toMatch(/^max-age=\d+/);
		}
	});

	it("uploads an image and audio, renders a preview job, and serves the MP4", async () => {
		const image = await upload("still.png", "image/png", makePng(64, 64));
		const audio = await upload("tone.wav", "audio/wav", makeWav(1));

		const created = await api("POST", "/v1/jobs", { model: "preview", input: { image: image.id, audio: audio.id } });
		expect(created.status, await created.clone().text()).toBe(202);
		job = (await created.json()) as Job;
		expect(job.id).toMatch(/^job_/);

		const deadline = Date.now() + 120_000;
		while (!["succeeded", "failed", "canceled"].includes(job.status)) {
			if (Date.now() > deadline) throw new Error(`job still ${job.status} after 120 s: ${JSON.stringify(job)}`);
			await sleep(1000);
			const res = await api("GET", `/v1/jobs/${job.id}`);
			expect(res.status).toBe(200);
			job = (await res.json()) as Job;
		}
		expect(job.status, JSON.stringify(job.error)).toBe("succeeded");
		expect(job.output?.video.content_type).toBe("video/mp4");

		const res = await api("GET", `/v1/jobs/${job.id}/video`);
		expect(res.status).toBe(200);
		expect(res.headers.get("accept-ranges")).toBe("bytes");
		video = Buffer.from(await res.arrayBuffer());
		expect(video.subarray(4, 8).toString("latin1")).toBe("ftyp");
		expect(video.length).toBe(job.output?.video.size);
		expect(Number(res.headers.get("content-length"))).toBe(video.length);
		if (job.output?.video.sha256) expect(sha256(video)).toBe(job.output.video.sha256);
	});

	it("answers a Range request with 206 and exactly those bytes", async () => {
		expect(video, "needs the video of the job test above").toBeDefined();
		const res = await api("GET", `/v1/jobs/${job.id}/video`, undefined, { range: "bytes=0-99" });
		expect(res.status).toBe(206);
		const part = Buffer.from(await res.arrayBuffer());
		expect(part.length).toBe(100);
		expect(part.equals(video.subarray(0, 100))).toBe(true);
		expect(res.headers.get("content-range")).toBe(`bytes 0-99/${video.length}`);
	});

	it("renders H.264 video with an AAC audio track (ffprobe)", async (ctx) => {
		expect(video, "needs the video of the job test above").toBeDefined();
		const ffprobe = process.env.FFPROBE ?? "ffprobe";
		const probe = spawnSync(ffprobe, ["-version"], { encoding: "utf8" });
		if (probe.error) {
			if (process.env.REELGATE_REQUIRE_TOOLS) throw new Error("ffprobe is required here: apt-get install ffmpeg");
			ctx.skip();
		}
		const dir = mkdtempSync(path.join(tmpdir(), "reelgate-video-"));
		try {
			const file = path.join(dir, "out.mp4");
			writeFileSync(file, video);
			const r = spawnSync(
				ffprobe,
				["-v", "error", "-show_entries", "stream=codec_type,codec_name", "-of", "json", file],
				{
					encoding: "utf8",
				},
			);
			expect(r.status, r.stderr).toBe(0);
			const streams = (JSON.parse(r.stdout) as { streams: { codec_type: string; codec_name: string }[] }).streams;
			expect(streams.find((s) => s.codec_type === "video")?.codec_name).toBe("h264");
			expect(streams.find((s) => s.codec_type === "audio")?.codec_name).toBe("aac");
		} finally {
			rmSync(dir, { recursive: true, force: true });
		}
	});

	it("manages keys from the shell (npm run keys): create, list, revoke", async () => {
		const created = keysCli(["create", "--name", "cli", "--scopes", "jobs:read", "--url", stack.url]);
		expect(created.status, created.stderr).toBe(0);
		const key = JSON.parse(created.stdout) as { id: string; key: string; scopes: string[] };
		expect(key.id).toMatch(/^key_/);
		expect(key.scopes).toEqual(["jobs:read"]);
		const listed = keysCli(["list", "--url", stack.url]);
		expect(listed.status, listed.stderr).toBe(0);
		expect((JSON.parse(listed.stdout) as { data: { id: string }[] }).data.map((k) => k.id)).toContain(key.id);
		const asKey = () => fetch(`${stack.url}/v1/jobs`, { headers: { authorization: `Bearer ${key.key}` } });
		expect((await asKey()).status).toBe(200);
		const revoked = keysCli(["revoke", key.id, "--url", stack.url]);
		expect(revoked.status, revoked.stderr).toBe(0);
		expect((JSON.parse(revoked.stdout) as { revoked_at: string | null }).revoked_at).toBeTruthy();
		expect((await asKey()).status).toBe(401);
	});

	it("answers a GET that carries a JSON body on a POST-only path with 405, never reading the body", async () => {
		// fetch refuses to send a GET body; a raw HTTP client sends one, as the Worker's runtime accepts it.
		for (const p of ["/v1/uploads", "/v1/webhooks/test", "/v1/admin/model-files"]) {
			const body = '{"url":"https://a.example/hook"}';
			const { status, contentType } = await new Promise<{ status: number; contentType: string }>((resolve, reject) => {
				const req = httpRequest(`${stack.url}${p}`, {
					method: "GET",
					headers: {
						authorization: `Bearer ${apiKey}`,
						"content-type": "application/json",
						"content-length": String(body.length),
					},
				});
				req.on("response", (res) => {
					res.resume();
					res.on("end", () => resolve({ status: res.statusCode ?? 0, contentType: res.headers["content-type"] ?? "" }));
				});
				req.on("error", reject);
				req.end(body);
			});
			expect(status, p).toBe(405);
			expect(contentType, p).toBe("application/problem+json");
		}
	});

	it("says how to start the stack when none answers", async () => {
		const r = keysCli(["list"], { REELGATE_PORT: String(await freePort()) });
		expect(r.status).toBe(1);
		expect(r.stderr).toContain("npm start");
	});

	it("stops on SIGTERM with no process left and its ports free", async () => {
		const code = await stack.stop();
		expect(code).toBe(0);
		// The children are stopped before start.mjs exits; allow the kernel a moment to release the sockets.
		const until = Date.now() + 5000;
		while (Date.now() < until && (stack.survivors().length > 0 || !(await portsFree(stack.ports)))) await sleep(200);
		expect(stack.survivors()).toEqual([]);
		expect(await portsFree(stack.ports)).toBe(true);
	});
});
