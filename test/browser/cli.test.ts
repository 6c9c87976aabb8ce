// The `reelgate` CLI against the same local stack: a PNG and a WAV in, a playable MP4 out.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, inject, it } from "vitest";
import { nodeBinary, ROOT } from "../../scripts/lib/paths.mjs";
import { makePng, makeWav } from "../e2e/media";

const { url, apiKey, adminToken } = inject("reelgate");
const dir = mkdtempSync(path.join(tmpdir(), "reelgate-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the CLI as `npm run reelgate` would (the pinned Node, type stripping); resolves with its output. */
function cli(args: string[], env: Record<string, string> = {}) {
	return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
		const child = spawn(nodeBinary(), [path.join(ROOT, "sdk", "cli.ts"), ...args, "--url", url], {
			cwd: ROOT,
			env: { ...process.env, REELGATE_API_KEY: apiKey, ...env },
		});
		let stdout = "";
		let stderr = "";
		child.stdout.on("data", (c) => {
			stdout += c;
		});
		child.stderr.on("data", (c) => {
			stderr += c;
		});
		child.on("close", (code) => resolve({ code, stdout, stderr }));
	});
}

describe("the reelgate CLI", () => {
	let jobId = "";

	it("generates an MP4 from a PNG and a WAV, with progress on stderr", async () => {
		const image = path.join(dir, "in.png");
		const audio = path.join(dir, "in.wav");
		const out = path.join(dir, "out.mp4");
		writeFileSync(image, makePng(64, 64));
		writeFileSync(audio, makeWav(1));
		const run = await cli([
			"generate",
			"--image",
			image,
			"--audio",
			audio,
			"--model",
			"preview",
			"--duration",
			"1",
			"--prompt",
			"a test",
			"--out",
			out,
		]);
		expect(run.code, run.stderr).toBe(0);
		// Not a terminal here: progress comes as plain lines.
		expect(run.stderr).toMatch(/upload in\.png 100%/);
		expect(run.stderr).toMatch(/succeeded 100%/);
		expect(run.stderr).not.toContain("\x1b[");
		const job = JSON.parse(run.stdout) as { id: string; status: string; output: { video: { size: number } } };
		expect(job.status).toBe("succeeded");
		jobId = job.id;
		const mp4 = readFileSync(out);
		expect(mp4.subarray(4, 8).toString("latin1")).toBe("ftyp");
		expect(mp4.length).toBe(job.output.video.size);

		const ffprobe = process.env.FFPROBE ?? "ffprobe";
		const probe = spawnSync(
			ffprobe,
			["-v", "error", "-show_entries", "stream=codec_type,codec_name", "-of", "json", out],
			{ encoding: "utf8" },
		);
		if (probe.error) {
			if (process.env.REELGATE_REQUIRE_TOOLS) throw new Error("ffprobe is required here: apt-get install ffmpeg");
			return;
		}
		const streams = (JSON.parse(probe.stdout) as { streams: { codec_type: string; codec_name: string }[] }).streams;
		expect(streams).toContainEqual({ codec_type: "video", codec_name: "h264" });
		expect(streams.some((s) => s.codec_type === "audio")).toBe(true);
	});

	it("lists and shows jobs", async () => {
		expect(jobId).not.toBe("");
		const list = await cli(["jobs", "list", "--limit", "5"]);
		expect(list.code, list.stderr).toBe(0);
		expect((JSON.parse(list.stdout) as { data: { id: string }[] }).data.map((j) => j.id)).toContain(jobId);
		const show = await cli(["jobs", "show", jobId]);
		expect(JSON.parse(show.stdout)).toMatchObject({ id: jobId, status: "succeeded" });
	});

	it("reports the problem's detail and exits 1 for a job that does not exist", async () => {
		const run = await cli(["jobs", "show", "job_doesnotexist"]);
		expect(run.code).toBe(1);
		expect(run.stderr).toMatch(/error: .+\(404 not_found/);
	});

	it("creates an API key with the admin token", async () => {
		const run = await cli(["keys", "create", "--name", "from-cli", "--admin-token", adminToken]);
		expect(run.code, run.stderr).toBe(0);
		expect(JSON.parse(run.stdout)).toMatchObject({ name: "from-cli", key: expect.any(String) });
	});

	it("exits 2 with usage on a missing option", async () => {
		const run = await cli(["generate", "--image", "x.png"]);
		expect(run.code).toBe(2);
		expect(run.stderr).toContain("--out");
	});
});
