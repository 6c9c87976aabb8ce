#!/usr/bin/env node
// `npm run test:python`: the GPU worker's pytest suite (CPU only, in gpu-worker/.venv) and the Python client's
// (clients/python/tests, in clients/python/.venv with the package installed from its source as a user installs it,
// not in editable mode), each venv set up on demand. One junit report for both when PYTEST_ADDOPTS asks for one.
// Extra arguments go to pytest, e.g. `node scripts/python-tests.mjs -k preview`; a path under clients/python runs
// the client's suite alone, any other path the worker's alone.
import { spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { CLIENT_DIR, ensureClientEnv, ensurePythonEnv, WORKER_DIR } from "./python-env.mjs";

function run(cmd, args, options) {
	return new Promise((resolve, reject) => {
		const child = spawn(cmd, args, { stdio: "inherit", ...options });
		for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
		child.on("error", reject);
		child.on("close", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
	});
}

/** PYTEST_ADDOPTS without its --junitxml, and that path (the caller's report). */
function splitJunit(addopts = "") {
	const m = /(?:^|\s)--junitxml[= ](\S+)/.exec(addopts);
	return { rest: m ? addopts.replace(m[0], " ").trim() : addopts, junit: m?.[1] };
}

/** The <testsuite> elements of several junit files in one <testsuites> file. */
function mergeJunit(parts, into) {
	const suites = parts
		.filter((p) => existsSync(p))
		.map((p) => {
			const xml = readFileSync(p, "utf8");
			rmSync(p, { force: true });
			return [...xml.matchAll(/<testsuite\b[\s\S]*?<\/testsuite>|<testsuite\b[^>]*\/>/g)].map((m) => m[0]).join("\n");
		});
	writeFileSync(into, `<?xml version="1.0" encoding="utf-8"?>\n<testsuites>\n${suites.join("\n")}\n</testsuites>\n`);
}

const args = process.argv.slice(2);
const paths = args.filter((a) => !a.startsWith("-"));
const clientOnly = paths.length > 0 && paths.every((p) => path.resolve(p).startsWith(CLIENT_DIR));
const suites = paths.length === 0 ? ["worker", "client"] : clientOnly ? ["client"] : ["worker"];
const { rest, junit } = splitJunit(process.env.PYTEST_ADDOPTS);

let failed = 0;
const reports = [];
try {
	for (const suite of suites) {
		const report = junit ? `${junit}.${suite}.xml` : undefined;
		if (report) reports.push(report);
		const env = {
			...process.env,
			PYTEST_ADDOPTS: [rest, report ? `--junitxml=${report}` : ""].filter(Boolean).join(" "),
		};
		let code;
		if (suite === "worker") {
			const python = await ensurePythonEnv();
			code = await run(python, ["-m", "pytest", ...(paths.length ? [] : ["tests"]), ...args], { cwd: WORKER_DIR, env });
		} else {
			const python = await ensureClientEnv();
			// Its paths as given from the caller's folder (pytest runs in clients/python).
			const clientArgs = args.map((a) => (a.startsWith("-") ? a : path.resolve(a)));
			code = await run(python, ["-m", "pytest", ...clientArgs], { cwd: CLIENT_DIR, env });
		}
		// pytest exit 5: no tests collected (a -k that matches none in this suite) is not a failure of the other.
		if (code !== 0 && !(code === 5 && suites.length > 1)) failed = code;
	}
} catch (err) {
	console.error(`python tests: ${err.message}`);
	failed = 1;
}
if (junit) mergeJunit(reports, junit);
process.exit(failed);
