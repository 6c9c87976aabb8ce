// The `reelgate` CLI against the same local stack, found as a developer's shell finds it: through the record that
// `npm start` writes (no --url). A PNG and a WAV in, a playable MP4 out; models, jobs, keys, and its refusals.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, inject, it } from "vitest";
import { nodeBinary, ROOT } from "../../scripts/lib/paths.mjs";
import { freePort } from "../../scripts/lib/wait.mjs";
import { makePng, makeWav } from "../e2e/media";
import { environmentWithoutApi, runToEnd } from "./process";

const { url, apiKey, adminToken, localFile } = inject("reelgate");
const dir = mkdtempSync(path.join(tmpdir(), "reelgate-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const image = path.join(dir, "in.png");
const audio = path.join(dir, "in.wav");
writeFileSync(image, makePng(64, 64));
writeFileSync(audio, makeWav(1));

/** Runs the CLI as `npm run reelgate` would (the pinned Node, type stripping), in `dir`; resolves with its output. */
function cli(args: string[], env: Record<string, string> = {}) {
	return runToEnd(nodeBinary(), [path.join(ROOT, "sdk", "cli.ts"), ...args], {
		cwd: dir,
		env: { ...environmentWithoutApi(), REELGATE_LOCAL_FILE: localFile, REELGATE_API_KEY: apiKey, ...env },
	});
}

const noStackTrace = (text: string) => expect(text).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);

describe("the reelgate CLI", () => {
	let jobId = "";

	it("says where it sends requests: the stack `npm start` recorded", async () => {
		const run = await cli(["url"]);
		expect(run.code).toBe(0);
		expect(run.stdout.trim()).toBe(url);
		expect(run.stderr).toContain(localFile);
	});

	it("generates an MP4 from a PNG and a WAV, with progress on stderr", async () => {
		const out = path.join(dir, "out.mp4");
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
		const job = JSON.parse(run.stdout) as {
			id: string;
			status: string;
			started_at: string;
			completed_at: string;
			output: { video: { size: number } };
		};
		expect(job.status).toBe("succeeded");
		// The preview renders between two polls: its start is when the GPU worker's run began, not when it ended.
		expect(Date.parse(job.started_at)).toBeLessThan(Date.parse(job.completed_at));
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

	it("runs a model named first, saving the video as JOB_ID.mp4 by default", async () => {
		const run = await cli(["run", "preview", "--image", image, "--duration", "1"]);
		expect(run.code, run.stderr).toBe(0);
		const job = JSON.parse(run.stdout) as { id: string };
		expect(existsSync(path.join(dir, `${job.id}.mp4`))).toBe(true);
		expect(run.stderr).toContain(`saved ${job.id}.mp4`);
	});

	it("lists the models with their availability, and why one is not available", async () => {
		const run = await cli(["models"]);
		expect(run.code, run.stderr).toBe(0);
		const lines = run.stdout.split("\n");
		expect(lines[0]).toMatch(/^MODEL\s+AVAILABLE\s+INPUTS\s+TITLE$/);
		expect(lines.find((l) => l.startsWith("preview "))).toMatch(/\byes\b/);
		// The local stack has no GPU backend for Wan: the table says so, with the catalog's reason.
		expect(lines.find((l) => l.startsWith("wan2.2-i2v "))).toMatch(/\bno: .+/);
		const show = await cli(["models", "show", "preview"]);
		expect(show.stdout).toMatch(/--duration\s+number 0\.5–60/);
		expect(show.stdout).toContain("--image FILE  required");
	});

	it("refuses an input outside the model's schema before uploading anything, naming each field", async () => {
		const run = await cli(["run", "preview", "--image", image, "--resolution", "100x100", "--fps", "0.5"]);
		expect(run.code).toBe(2);
		expect(run.stderr).toContain("input.resolution: must be WIDTHxHEIGHT, each side a multiple of 16 from 64 to 1920");
		expect(run.stderr).toContain("input.fps: must be an integer from 1 to 60");
		// Decided here, not by the API: no request id, and no upload progress.
		expect(run.stderr).not.toContain("request req_");
		expect(run.stderr).not.toContain("upload in.png");
	});

	it("refuses a model no backend serves with the catalog's reason, before uploading (exit 4)", async () => {
		const run = await cli(["run", "wan2.2-i2v", "--image", image]);
		expect(run.code).toBe(4);
		expect(run.stderr).toMatch(/wan2\.2-i2v is not available: .+/);
		expect(run.stderr).not.toContain("upload in.png");
	});

	it("prints usage, not a stack trace, for an unknown flag, a flag of another command or a missing file", async () => {
		for (const [args, message] of [
			[["run", "preview", "--imgae", image], "Unknown option --imgae."],
			[["jobs", "list", "--image", image], "--image is not an option of `jobs list`."],
			[["run", "preview", "--image", "nope.png"], "--image nope.png: no such file."],
			[["frobnicate"], 'Unknown command "frobnicate".'],
		] as const) {
			const run = await cli([...args]);
			expect(run.code, args.join(" ")).toBe(2);
			expect(run.stderr.split("\n")[0]).toBe(message);
			expect(run.stderr).toContain("Usage: npm run reelgate -- <command> [options]");
			noStackTrace(run.stderr);
		}
	});

	it("lists jobs as a table, and as JSON for scripts", async () => {
		expect(jobId).not.toBe("");
		const table = await cli(["jobs", "list", "--limit", "5"]);
		expect(table.code, table.stderr).toBe(0);
		expect(table.stdout.split("\n")[0]).toMatch(/^ID\s+STATUS\s+MODEL\s+CREATED \(UTC\)\s+TOOK\s+COST$/);
		expect(table.stdout).toMatch(new RegExp(`^${jobId}\\s+succeeded\\s+preview\\s+\\d{4}-\\d\\d-\\d\\d `, "m"));
		const json = await cli(["jobs", "list", "--limit", "5", "--json"]);
		expect((JSON.parse(json.stdout) as { data: { id: string }[] }).data.map((j) => j.id)).toContain(jobId);
		const show = await cli(["jobs", "show", jobId]);
		expect(JSON.parse(show.stdout)).toMatchObject({ id: jobId, status: "succeeded" });
	});

	it("watches, downloads and cancels jobs by id", async () => {
		const watch = await cli(["jobs", "watch", jobId]);
		expect(watch.code, watch.stderr).toBe(0);
		expect(JSON.parse(watch.stdout)).toMatchObject({ id: jobId, status: "succeeded" });
		const out = path.join(dir, "again.mp4");
		const download = await cli(["jobs", "download", jobId, "--out", out]);
		expect(download.code, download.stderr).toBe(0);
		expect(readFileSync(out).subarray(4, 8).toString("latin1")).toBe("ftyp");
		// A finished job cannot be canceled: the API's 409, shown as its problem.
		const cancel = await cli(["jobs", "cancel", jobId]);
		expect(cancel.code).toBe(3);
		expect(cancel.stderr).toMatch(/^error: .+ \(409 conflict, request req_\w+\)$/m);
	});

	it("reports the problem's detail and exits 3 for a job that does not exist", async () => {
		const run = await cli(["jobs", "show", "job_doesnotexist"]);
		expect(run.code).toBe(3);
		expect(run.stderr).toMatch(/error: .+\(404 not_found/);
	});

	it("creates an API key with the admin token", async () => {
		const run = await cli(["keys", "create", "--name", "from-cli", "--admin-token", adminToken]);
		expect(run.code, run.stderr).toBe(0);
		expect(JSON.parse(run.stdout)).toMatchObject({ name: "from-cli", key: expect.any(String) });
	});

	it("names the URL it could not reach, and how to change it (exit 4)", async () => {
		const nowhere = `http://127.0.0.1:${await freePort()}`;
		const run = await cli(["jobs", "list"], { REELGATE_URL: nowhere });
		expect(run.code).toBe(4);
		expect(run.stderr).toContain(`Cannot reach the Reelgate API at ${nowhere} (ECONNREFUSED; from REELGATE_URL)`);
		expect(run.stderr).toContain("--url or REELGATE_URL");
		noStackTrace(run.stderr);
	});
});
