// What `npm start` prints and records: a short banner, and a record of where it runs that the tools read.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, inject, it } from "vitest";
import { readDevVars } from "../../scripts/lib/dev-vars.mjs";
import { nodeBinary, ROOT } from "../../scripts/lib/paths.mjs";
import { environmentWithoutApi } from "./process";

const { url, adminToken, localFile, startOutput } = inject("reelgate");

describe("npm start", () => {
	it("prints a short banner with the URLs and the next command, not the tools' own output", () => {
		const lines = startOutput.trimEnd().split("\n");
		expect(lines.length, startOutput).toBeLessThanOrEqual(20);
		expect(startOutput).toContain("Reelgate is ready.");
		expect(startOutput).toContain(`Demo page      ${url}/`);
		expect(startOutput).toContain(`API reference  ${url}/docs`);
		expect(startOutput).toMatch(/^Next: npm run keys -- create --name me/m);
		// Wrangler's migration tables, binding lists and per-process prefixes go to the log file only.
		expect(startOutput).not.toMatch(/\[migrate\]|\[worker\]|\[gpu\]|┌|env\.DB/);
	});

	it("records its URL, where the admin token lives and its log, for the tools to find it", () => {
		const record = JSON.parse(readFileSync(localFile, "utf8")) as Record<string, unknown>;
		expect(record).toMatchObject({ url, pid: expect.any(Number), log_file: expect.any(String) });
		expect(readDevVars(String(record.admin_token_file)).ADMIN_TOKEN).toBe(adminToken);
		// The full output is in the log.
		expect(existsSync(String(record.log_file))).toBe(true);
		expect(readFileSync(String(record.log_file), "utf8")).toContain("[migrate]");
	});

	it("lets `npm run keys` find it without --url", () => {
		const run = spawnSync(nodeBinary(), [path.join(ROOT, "scripts", "keys.mjs"), "list"], {
			env: { ...environmentWithoutApi(), REELGATE_LOCAL_FILE: localFile },
			encoding: "utf8",
		});
		expect(run.status, run.stderr).toBe(0);
		expect(JSON.parse(run.stdout)).toHaveProperty("data");
	});

	it("runs without wrangler's per-invocation trace capture, which slows every request (--local-traces turns it on)", async () => {
		const res = await fetch(`${url}/cdn-cgi/explorer/api/local/observability/query`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ sql: "SELECT count(*) AS n FROM spans" }),
		});
		const body = (await res.json()) as { success: boolean; errors: { message: string }[] };
		expect(res.status, JSON.stringify(body)).toBe(404);
		expect(body.errors[0]?.message).toMatch(/not enabled/);
	});
});
