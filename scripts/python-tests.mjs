#!/usr/bin/env node
// `npm run test:python`: the GPU worker's pytest suite (CPU only) in gpu-worker/.venv, set up on demand.
// Extra arguments go to pytest, e.g. `node scripts/python-tests.mjs -k preview`.
import { spawn } from "node:child_process";
import { ensurePythonEnv, WORKER_DIR } from "./python-env.mjs";

let python;
try {
	python = await ensurePythonEnv();
} catch (err) {
	console.error(`python tests: ${err.message}`);
	process.exit(1);
}
const child = spawn(python, ["-m", "pytest", ...process.argv.slice(2)], { cwd: WORKER_DIR, stdio: "inherit" });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("error", (err) => {
	console.error(`python tests: cannot run pytest: ${err.message}`);
	process.exit(1);
});
child.on("close", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
