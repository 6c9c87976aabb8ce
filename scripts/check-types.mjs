#!/usr/bin/env node
// The static suite's check that worker-configuration.d.ts is what `npm run cf-typegen` makes of wrangler.toml and
// .dev.vars.example today: a fresh `wrangler types` (the same flags, read from package.json) beside it, compared
// line by line. `wrangler types --check` alone compares only a hash of the inputs, so a hand edit of the file or
// a new wrangler would pass it.
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { ROOT, toolEnv, wranglerArgv } from "./lib/paths.mjs";

const TRACKED = "worker-configuration.d.ts";
// Beside the tracked file, so the generated imports (`./src/index`) read the same; .gitignore keeps it out.
const FRESH = `worker-configuration.check-${process.pid}.d.ts`;

const script = JSON.parse(readFileSync(path.join(ROOT, "package.json"), "utf8")).scripts["cf-typegen"];
const [tool, command, ...flags] = script.split(/\s+/);
if (tool !== "wrangler" || command !== "types") {
	console.error(`types: cf-typegen is not a \`wrangler types\` command: ${script}`);
	process.exit(1);
}

/** Generates the fresh file and compares it; returns the exit code. */
function check() {
	const [node, args] = wranglerArgv(["types", FRESH, ...flags]);
	const run = spawnSync(node, args, {
		cwd: ROOT,
		env: toolEnv({ WRANGLER_SEND_METRICS: "false" }),
		encoding: "utf8",
		timeout: 180_000,
	});
	if (run.status !== 0) {
		console.error(`types: wrangler types failed (${run.status}):\n${run.stdout}\n${run.stderr}`);
		return 1;
	}
	// The header names the command that wrote the file, which here carries the fresh file's name.
	const fresh = readFileSync(path.join(ROOT, FRESH), "utf8").replace(` ${FRESH}\``, "`").split("\n");
	const tracked = readFileSync(path.join(ROOT, TRACKED), "utf8").split("\n");
	const at = fresh.findIndex((line, i) => line !== tracked[i]);
	if (at === -1 && fresh.length === tracked.length) {
		console.log(`types: ${TRACKED} is what \`npm run cf-typegen\` generates`);
		return 0;
	}
	const line = at === -1 ? Math.min(fresh.length, tracked.length) : at;
	console.error(
		`types: ${TRACKED} differs from a fresh \`wrangler types\` at line ${line + 1}: run \`npm run cf-typegen\``,
	);
	console.error(`  tracked: ${tracked[line] ?? "(end of file)"}\n  fresh:   ${fresh[line] ?? "(end of file)"}`);
	return 1;
}

let code = 1;
try {
	code = check();
} finally {
	rmSync(path.join(ROOT, FRESH), { force: true });
}
process.exit(code);
