/**
 * The onstart script a vast.ai instance runs (src/backends/vastai-models.ts), run here by the shell against a
 * loopback file server: a file is renamed into ComfyUI's model folder only once it passed its checks, so ComfyUI
 * never lists one that is incomplete or wrong.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { onstartScript } from "../../src/backends/vastai-models";

/** A minimal safetensors file: an 8-byte little-endian header length, then the JSON header. */
const header = Buffer.from('{"__metadata__":{}}');
const len = Buffer.alloc(8);
len.writeBigUInt64LE(BigInt(header.length));
const GOOD = Buffer.concat([len, header]);
const FILES: Record<string, Buffer> = {
	"/good.safetensors": GOOD,
	"/page": Buffer.from("<html>not a model</html>"),
};

let server: Server;
let base: string;
let workspace: string;

beforeAll(async () => {
	server = createServer((req, res) => {
		const body = FILES[req.url ?? ""];
		res.writeHead(body ? 200 : 404, { "content-length": String(body?.length ?? 0) });
		res.end(body);
	});
	await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
	const address = server.address();
	base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
	workspace = mkdtempSync(path.join(tmpdir(), "vast-onstart-"));
});

afterAll(async () => {
	await new Promise((r) => server.close(r));
	rmSync(workspace, { recursive: true, force: true });
});

async function finished(log: string): Promise<string> {
	for (let i = 0; i < 200; i++) {
		const text = existsSync(log) ? readFileSync(log, "utf8") : "";
		if (text.includes("done:")) return text;
		await new Promise((r) => setTimeout(r, 50));
	}
	throw new Error(`the fetch script did not finish: ${readFileSync(log, "utf8")}`);
}

describe("the vast.ai onstart script", () => {
	it("puts a verified file in place and leaves out one of the wrong size, hash or format", async () => {
		const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
		const script = onstartScript(
			[
				{
					folder: "vae",
					name: "good.safetensors",
					url: `${base}/good.safetensors`,
					size: GOOD.length,
					sha256: sha(GOOD),
				},
				{ folder: "vae", name: "sized-wrong.safetensors", url: `${base}/good.safetensors`, size: GOOD.length + 1 },
				{
					folder: "loras",
					name: "it's-hashed-wrong.safetensors",
					url: `${base}/good.safetensors`,
					sha256: "0".repeat(64),
				},
				{ folder: "loras", name: "a-page.safetensors", url: `${base}/page` },
			],
			workspace,
		);
		expect(script).not.toContain("git clone");
		// The onstart runs under sh and returns at once: the fetch goes on in the background.
		execFileSync("sh", ["-c", script], { stdio: "ignore" });
		const log = await finished(path.join(workspace, "reelgate", "fetch-models.log"));
		const models = path.join(workspace, "ComfyUI", "models");
		expect(readFileSync(path.join(models, "vae", "good.safetensors"))).toEqual(GOOD);
		for (const wrong of [
			"vae/sized-wrong.safetensors",
			"loras/it's-hashed-wrong.safetensors",
			"loras/a-page.safetensors",
		]) {
			expect(existsSync(path.join(models, wrong)), wrong).toBe(false);
			expect(existsSync(path.join(models, `${wrong}.part`)), `${wrong}.part`).toBe(false);
		}
		expect(log).toContain("size differs: sized-wrong.safetensors");
		expect(log).toContain("sha256 differs: it's-hashed-wrong.safetensors");
		expect(log).toContain("not safetensors: a-page.safetensors");
		expect(log).toContain("done: failed=1");
		// Run again (an instance restarted): what is in place is kept, not fetched again.
		rmSync(path.join(workspace, "reelgate", "fetch-models.log"));
		execFileSync("sh", ["-c", script], { stdio: "ignore" });
		expect(await finished(path.join(workspace, "reelgate", "fetch-models.log"))).not.toContain(
			"ready: good.safetensors",
		);
	});
});
