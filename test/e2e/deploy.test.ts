// The Worker bundles for deployment: `wrangler deploy --dry-run` needs no account and catches build errors.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect, it } from "vitest";
import { ROOT, toolEnv, wranglerArgv } from "../../scripts/lib/paths.mjs";

it("wrangler deploy --dry-run builds the Worker", () => {
	const outdir = mkdtempSync(path.join(tmpdir(), "reelgate-dist-"));
	try {
		const [node, args] = wranglerArgv(["deploy", "--dry-run", "--outdir", outdir]);
		const r = spawnSync(node, args, {
			cwd: ROOT,
			env: toolEnv({ CI: "true", WRANGLER_SEND_METRICS: "false" }),
			encoding: "utf8",
			timeout: 120_000,
		});
		expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
		expect(existsSync(outdir)).toBe(true);
		expect(readdirSync(outdir).some((f) => f.endsWith(".js"))).toBe(true);
	} finally {
		rmSync(outdir, { recursive: true, force: true });
	}
});
