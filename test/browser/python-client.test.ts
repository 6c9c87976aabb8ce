// The Python client (clients/python, installed as `pip install ./clients/python` installs it) against the same local
// stack, found through the record `npm start` writes: one run() call from a PNG and a WAV to a saved MP4.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ensureClientEnv } from "../../scripts/python-env.mjs";
import { makePng, makeWav } from "../e2e/media";
import { environmentWithoutApi, runToEnd } from "./process";

const { apiKey, localFile } = inject("reelgate");
const dir = mkdtempSync(path.join(tmpdir(), "reelgate-py-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SCRIPT = `
import json, sys
import reelgate

image, audio, out = sys.argv[1:4]
client = reelgate.Client()  # the stack from REELGATE_LOCAL_FILE, the key from REELGATE_API_KEY
stages = []
job = client.run("preview", {"image": image, "audio": audio, "duration_s": 1}, on_progress=lambda p: stages.append(p["stage"]))
size = job.download(out)
try:
    client.run("preview", {"image": image, "fps": 0})
    refused = None
except reelgate.ReelgateError as err:
    refused = [err.status, [e["field"] for e in err.field_errors]]
try:
    client.get_job("job_doesnotexist")
    missing = None
except reelgate.ReelgateError as err:
    missing = [err.status, err.code]
print(json.dumps({"status": job["status"], "size": size, "expected": job["output"]["video"]["size"],
                  "stages": sorted(set(stages)), "refused": refused, "missing": missing}))
`;

let python = "";
beforeAll(async () => {
	python = await ensureClientEnv();
}, 300_000);

describe("the Python client", () => {
	it("runs a job in one call, downloads the MP4, and raises problems with their fields", async () => {
		const image = path.join(dir, "in.png");
		const audio = path.join(dir, "in.wav");
		const out = path.join(dir, "out.mp4");
		writeFileSync(image, makePng(64, 64));
		writeFileSync(audio, makeWav(1));
		const run = await runToEnd(python, ["-c", SCRIPT, image, audio, out], {
			cwd: dir,
			env: { ...environmentWithoutApi(), REELGATE_LOCAL_FILE: localFile, REELGATE_API_KEY: apiKey },
		});
		expect(run.code, run.stderr).toBe(0);
		const result = JSON.parse(run.stdout) as Record<string, unknown>;
		expect(result).toMatchObject({
			status: "succeeded",
			stages: ["job", "upload"],
			refused: [400, ["input.fps"]],
			missing: [404, "not_found"],
		});
		expect(result.size).toBe(result.expected);
		expect(readFileSync(out).subarray(4, 8).toString("latin1")).toBe("ftyp");
	});
});
