#!/usr/bin/env node
// `npm run bench`: runs every benchmark script in bench/ (each prints a markdown section with its own
// baseline measured in the same run) and writes them, with the commands and the machine, to BENCHMARKS.md.
// `npm run bench -- uploads` runs only the benchmarks whose file name contains "uploads".
import { spawnSync } from "node:child_process";
import { readdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
const filter = process.argv[2] ?? "";
const scripts = readdirSync(path.join(root, "bench"))
	.filter((f) => f.endsWith(".mjs") && f !== "run.mjs" && f.includes(filter))
	.sort();

/** Drops the runtime's own warnings (e.g. wrangler's offline `Request.cf` notice) and adds a heading if missing. */
function tidy(script, stdout) {
	const noise = /^(\[wrangler:|Error: getaddrinfo|\s+at )/;
	const text = stdout
		.split("\n")
		.filter((line) => !noise.test(line))
		.join("\n")
		.trim();
	return text.startsWith("## ") ? text : `## ${script.replace(/\.mjs$/, "")}\n\n${text}`;
}

const sections = [];
let failed = 0;
for (const script of scripts) {
	const command = `node bench/${script}`;
	process.stderr.write(`\n== ${command}\n`);
	const run = spawnSync(process.execPath, [path.join("bench", script)], {
		cwd: root,
		encoding: "utf8",
		stdio: ["ignore", "pipe", "inherit"],
		timeout: 30 * 60_000,
	});
	if (run.status !== 0) {
		failed += 1;
		sections.push(`## ${script}\n\nFailed (exit ${run.status ?? run.signal}); see the command's output.\n`);
		continue;
	}
	sections.push(
		`${tidy(script, run.stdout)}\n\nCommand: \`${command}\` (or \`npm run bench -- ${script.replace(/\.mjs$/, "")}\`).\n`,
	);
}

const cpus = os.cpus();
const header = `# Benchmarks

Each figure is a ratio against a baseline measured in the same run on the same machine, so the ratios carry
over between machines better than the absolute numbers. Re-run with \`npm run bench\`.

Last run: ${new Date().toISOString()} on ${cpus.length} × ${cpus[0]?.model ?? "unknown CPU"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB,
Node ${process.version}, ${os.platform()} ${os.release()}.
`;
if (!filter) writeFileSync(path.join(root, "BENCHMARKS.md"), `${header}\n${sections.join("\n")}`);
else process.stdout.write(`${sections.join("\n")}\n`);
process.stderr.write(
	`\n${scripts.length - failed} benchmarks ran, ${failed} failed${filter ? "" : "; results in BENCHMARKS.md"}\n`,
);
process.exit(failed ? 1 : 0);
