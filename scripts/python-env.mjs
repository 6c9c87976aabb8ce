// The GPU worker's Python environment: gpu-worker/.venv, created with python3 ≥ 3.11 and kept in step with
// requirements.txt + requirements-dev.txt (a hash stamp inside the venv says what was installed last).
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ROOT } from "./lib/paths.mjs";
import { findPython } from "./lib/preflight.mjs";

export const WORKER_DIR = path.join(ROOT, "gpu-worker");
export const VENV_DIR = path.join(WORKER_DIR, ".venv");
const REQUIREMENTS = ["requirements.txt", "requirements-dev.txt"];
const STAMP = path.join(VENV_DIR, ".reelgate-requirements.sha256");
const LOCK = path.join(VENV_DIR, ".reelgate-setup.lock");
const LOCK_STALE_MS = 15 * 60 * 1000;

/** The venv's python executable (it may not exist yet). */
export function venvPython() {
	return process.platform === "win32"
		? path.join(VENV_DIR, "Scripts", "python.exe")
		: path.join(VENV_DIR, "bin", "python");
}

function run(cmd, args) {
	return new Promise((resolve, reject) => {
		const child = spawn(cmd, args, {
			cwd: WORKER_DIR,
			stdio: ["ignore", "inherit", "inherit"],
			env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: "1" },
		});
		child.on("error", reject);
		child.on("close", (code) =>
			code === 0 ? resolve() : reject(new Error(`${path.basename(cmd)} ${args.join(" ")} exited ${code}`)),
		);
	});
}

function requirementsHash() {
	const hash = createHash("sha256");
	for (const name of REQUIREMENTS) hash.update(`${name}\n`).update(readFileSync(path.join(WORKER_DIR, name)));
	return hash.digest("hex");
}

/** Serializes setup between processes (npm test and npm start may both get here): a lock directory. */
async function withLock(fn) {
	mkdirSync(VENV_DIR, { recursive: true });
	for (;;) {
		try {
			mkdirSync(LOCK);
			break;
		} catch (err) {
			if (err.code !== "EEXIST") throw err;
			if (Date.now() - statSync(LOCK).mtimeMs > LOCK_STALE_MS) rmSync(LOCK, { recursive: true, force: true });
			else await new Promise((r) => setTimeout(r, 500));
		}
	}
	try {
		return await fn();
	} finally {
		rmSync(LOCK, { recursive: true, force: true });
	}
}

/**
 * Makes sure gpu-worker/.venv exists with the pinned requirements and returns its python path.
 * Throws with a readable message when no python3 ≥ 3.11 (with venv) is on PATH or pip fails.
 */
export async function ensurePythonEnv({ log = (msg) => console.error(msg) } = {}) {
	return withLock(async () => {
		const python = venvPython();
		if (!existsSync(python)) {
			const found = findPython();
			if (!found.exe) {
				throw new Error(
					`python3 ≥ 3.11 with venv is required (${found.reason}). Install: apt-get install python3 python3-venv`,
				);
			}
			log(`[python-env] creating ${path.relative(ROOT, VENV_DIR)} with ${found.exe} (${found.version})`);
			await run(found.exe, ["-m", "venv", VENV_DIR]);
		}
		const wanted = requirementsHash();
		const installed = existsSync(STAMP) ? readFileSync(STAMP, "utf8").trim() : "";
		if (installed !== wanted) {
			log("[python-env] installing gpu-worker requirements (they changed since the last install)");
			const reqs = REQUIREMENTS.flatMap((name) => ["-r", name]);
			await run(python, ["-m", "pip", "install", "--quiet", ...reqs]);
			writeFileSync(STAMP, `${wanted}\n`);
		}
		return python;
	});
}
