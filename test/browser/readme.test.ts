// The README's walk-through, run as it is written (bash, from the checkout) against the suite's stack on its random
// port: the tools must find the stack by themselves, and each way to a video must end with one.
import { existsSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, inject, it } from "vitest";
import { ROOT } from "../../scripts/lib/paths.mjs";
import { environmentWithoutApi, runToEnd } from "./process";

const { localFile } = inject("reelgate");
const OUT = path.join(ROOT, "walkthrough");
const existed = existsSync(OUT);
afterAll(() => {
	if (!existed) rmSync(OUT, { recursive: true, force: true });
});

/** The first ```sh block after the "## Walk-through" heading. */
function walkthrough(): string {
	const readme = readFileSync(path.join(ROOT, "README.md"), "utf8");
	const section = readme.slice(readme.indexOf("\n## Walk-through\n"));
	const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
	if (!block) throw new Error("README.md has no ```sh block under ## Walk-through");
	return block;
}

describe("the README's walk-through", () => {
	it("runs verbatim on the stack's port, and each of the CLI, the SDK, the Python client and curl makes a video", async () => {
		const run = await runToEnd("bash", ["-e", "-o", "pipefail", "-c", walkthrough()], {
			cwd: ROOT,
			// The only hint of where the stack runs is its record, as after a developer's `npm start`.
			env: { ...environmentWithoutApi(), REELGATE_LOCAL_FILE: localFile },
		});
		expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
		for (const video of ["cli.mp4", "sdk.mp4", "python.mp4", "curl.mp4"]) {
			const file = path.join(OUT, video);
			expect(existsSync(file), video).toBe(true);
			expect(readFileSync(file).subarray(4, 8).toString("latin1"), video).toBe("ftyp");
		}
		expect(JSON.parse(readFileSync(path.join(OUT, "cli.json"), "utf8"))).toMatchObject({ status: "succeeded" });
		expect(run.stdout).toMatch(/^event: status$/m);
		expect(run.stdout).toMatch(/^HTTP\/1\.1 206 /m);
		expect(run.stdout).toMatch(/^content-range: bytes 0-99\/\d+/im);
		expect(readFileSync(path.join(OUT, "first100.bin")).length).toBe(100);
	});
});
