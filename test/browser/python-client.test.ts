// The Python example client (clients/python, standard library only) against the same local stack.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, inject, it } from "vitest";
import { ROOT } from "../../scripts/lib/paths.mjs";
import { findPython } from "../../scripts/lib/preflight.mjs";
import { makePng, makeWav } from "../e2e/media";

const { url, apiKey } = inject("reelgate");
const dir = mkdtempSync(path.join(tmpdir(), "reelgate-py-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SCRIPT = `
import json, sys
sys.path.insert(0, sys.argv[1])
import reelgate_client as rc
url, key, image, audio, out = sys.argv[2:7]
client = rc.ReelgateClient(url, key)
img = client.upload_file(image)
aud = client.upload_file(audio)
job = client.create_job({"model": "preview", "input": {"image": img["id"], "audio": aud["id"], "duration_s": 1}})
job = client.wait_for_job(job["id"], timeout=180, poll_interval=0.5)
size = client.download_video(job["id"], out) if job["status"] == "succeeded" else 0
try:
    client.get_job("job_doesnotexist")
    missing = None
except rc.ReelgateError as err:
    missing = [err.status, err.code]
print(json.dumps({"status": job["status"], "size": size, "expected": job.get("output", {}).get("video", {}).get("size"), "missing": missing}))
`;

describe("the Python client", () => {
	it("uploads, creates a job, waits, downloads the MP4, and raises the problem for a missing job", async () => {
		const python = findPython().exe;
		expect(python, "python3 runs the local stack, so it is here").toBeTruthy();
		const image = path.join(dir, "in.png");
		const audio = path.join(dir, "in.wav");
		const out = path.join(dir, "out.mp4");
		writeFileSync(image, makePng(64, 64));
		writeFileSync(audio, makeWav(1));
		const args = ["-c", SCRIPT, path.join(ROOT, "clients", "python"), url, apiKey, image, audio, out];
		const run = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
			const child = spawn(python as string, args);
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
		expect(run.code, run.stderr).toBe(0);
		const result = JSON.parse(run.stdout) as { status: string; size: number; expected: number; missing: unknown };
		expect(result).toMatchObject({ status: "succeeded", missing: [404, "not_found"] });
		expect(result.size).toBe(result.expected);
		expect(readFileSync(out).subarray(4, 8).toString("latin1")).toBe("ftyp");
	});
});
