// `npm run deploy:dry-run` (scripts/deploy.mjs --dry-run) bundles the Worker for deployment without an account: the
// production environment's config and vars through `wrangler deploy --dry-run`, into dist/.
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { expect, it } from "vitest";
import { nodeBinary, ROOT, toolEnv } from "../../scripts/lib/paths.mjs";

it("npm run deploy:dry-run bundles the Worker with its three Durable Object classes", () => {
	const started = Date.now();
	const r = spawnSync(nodeBinary(), [path.join(ROOT, "scripts", "deploy.mjs"), "--dry-run"], {
		cwd: ROOT,
		env: toolEnv({ CI: "true", WRANGLER_SEND_METRICS: "false" }),
		encoding: "utf8",
		timeout: 120_000,
	});
	expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
	expect(r.stdout).toContain("The Worker builds.");
	const dist = path.join(ROOT, "dist");
	// Written by this run, not left over from an earlier one.
	const bundles = readdirSync(dist)
		.filter((f) => f.endsWith(".js"))
		.map((f) => path.join(dist, f))
		.filter((f) => statSync(f).mtimeMs >= started - 1000);
	expect(bundles).toHaveLength(1);
	// The module exports what wrangler.toml binds: the three Durable Object classes and the fetch handler.
	const exported = /^export \{([^}]*)\}/m.exec(readFileSync(bundles[0] as string, "utf8"))?.[1] ?? "";
	const names = exported.split(",").map((n) => n.trim());
	expect(names).toEqual(
		expect.arrayContaining(["JobDO", "BackendDO", "RateLimiterDO", expect.stringMatching(/ as default$/)]),
	);
});
