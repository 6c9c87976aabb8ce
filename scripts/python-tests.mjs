#!/usr/bin/env node
// `npm run test:python`: the GPU worker's pytest suite (CPU only) and the Python client's, in gpu-worker/.venv,
// set up on demand.
// Extra arguments go to pytest, e.g. `node scripts/python-tests.mjs -k preview`.
import { spawn } from "node:child_process";
import path from "node:path";
import { ROOT } from "./lib/paths.mjs";
import { ensurePythonEnv, WORKER_DIR } from "./python-env.mjs";

let python;
try {
	python = await ensurePythonEnv();
} catch (err) {
	console.error(`python tests: ${err.message}`);
	process.exit(1);
}
// Without paths of its own, pytest also collects the Python API client's tests (stdlib only, offline), in the
// same run so the one junit report counts both.
const args = process.argv.slice(2);
const paths = args.some((a) => !a.startsWith("-")) ? [] : ["tests", path.join(ROOT, "clients", "python")];
const child = spawn(python, ["-m", "pytest", ...paths, ...args], { cwd: WORKER_DIR, stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("error", (err) => {
	console.error(`python tests: cannot run pytest: ${err.message}`);
	process.exit(1);
});
child.on("close", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
