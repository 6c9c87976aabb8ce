// Python virtualenvs kept in step with their requirements files: the GPU worker's (gpu-worker/.venv, from
// requirements.txt + requirements-dev.txt) and any other a suite needs (e.g. test/fuzz/.venv). Each is created
// with python3 ≥ 3.11; a hash stamp inside the venv says which requirements were installed last.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ROOT } from "./lib/paths.mjs";
import { findPython } from "./lib/preflight.mjs";

export const WORKER_DIR = path.join(ROOT, "gpu-worker");
export const VENV_DIR = path.join(WORKER_DIR, ".venv");
const WORKER_REQUIREMENTS = ["requirements.txt", "requirements-dev.txt"].map((name) => path.join(WORKER_DIR, name));
const STAMP_NAME = ".reelgate-requirements.sha256";
const LOCK_NAME = ".reelgate-setup.lock";
const LOCK_STALE_MS = 15 * 60 * 1000;

/** A venv's python executable (it may not exist yet); the GPU worker's by default. */
export function venvPython(venvDir = VENV_DIR) {
	return process.platform === "win32"
		? path.join(venvDir, "Scripts", "python.exe")
		: path.join(venvDir, "bin", "python");
}

function run(cmd, args, cwd) {
	return new Promise((resolve, reject) => {
		const child = spawn(cmd, args, {
			cwd,
			stdio: ["ignore", "inherit", "inherit"],
			env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: "1" },
		});
		child.on("error", reject);
		child.on("close", (code) =>
			code === 0 ? resolve() : reject(new Error(`${path.basename(cmd)} ${args.join(" ")} exited ${code}`)),
		);
	});
}

/** Hashes each file's base name and bytes (base names keep the stamps of existing venvs valid). */
function requirementsHash(files) {
	const hash = createHash("sha256");
	for (const file of files) hash.update(`${path.basename(file)}\n`).update(readFileSync(file));
	return hash.digest("hex");
}

/** Serializes setup of one venv between processes (npm test and npm start may both get here): a lock directory. */
async function withLock(venvDir, fn) {
	const lock = path.join(venvDir, LOCK_NAME);
	mkdirSync(venvDir, { recursive: true });
	for (;;) {
		try {
			mkdirSync(lock);
			break;
		} catch (err) {
			if (err.code !== "EEXIST") throw err;
			if (Date.now() - statSync(lock).mtimeMs > LOCK_STALE_MS) rmSync(lock, { recursive: true, force: true });
			else await new Promise((r) => setTimeout(r, 500));
		}
	}
	try {
		return await fn();
	} finally {
		rmSync(lock, { recursive: true, force: true });
	}
}

/**
 * Makes sure `venvDir` exists with the pinned `requirements` (absolute paths of requirements files) and returns
 * its python path. Throws with a readable message when no python3 ≥ 3.11 (with venv) is on PATH or pip fails.
 */
export async function ensureVenv({ venvDir, requirements, label, log = (msg) => console.error(msg) }) {
	const name = label ?? path.relative(ROOT, venvDir);
	return withLock(venvDir, async () => {
		const python = venvPython(venvDir);
		if (!existsSync(python)) {
			const found = findPython();
			if (!found.exe) {
				throw new Error(
					`python3 ≥ 3.11 with venv is required (${found.reason}). Install: apt-get install python3 python3-venv`,
				);
			}
			log(`[python-env] creating ${path.relative(ROOT, venvDir)} with ${found.exe} (${found.version})`);
			await run(found.exe, ["-m", "venv", venvDir], ROOT);
		}
		const stamp = path.join(venvDir, STAMP_NAME);
		const wanted = requirementsHash(requirements);
		const installed = existsSync(stamp) ? readFileSync(stamp, "utf8").trim() : "";
		if (installed !== wanted) {
			log(`[python-env] installing ${name} requirements (they changed since the last install)`);
			const reqs = requirements.flatMap((file) => ["-r", file]);
			await run(python, ["-m", "pip", "install", "--quiet", ...reqs], path.dirname(requirements[0] ?? venvDir));
			writeFileSync(stamp, `${wanted}\n`);
		}
		return python;
	});
}

/** Makes sure gpu-worker/.venv exists with the GPU worker's pinned requirements and returns its python path. */
export function ensurePythonEnv({ log } = {}) {
	return ensureVenv({ venvDir: VENV_DIR, requirements: WORKER_REQUIREMENTS, label: "gpu-worker", log });
}

export const CLIENT_DIR = path.join(ROOT, "clients", "python");

/**
 * clients/python/.venv with the client's test requirements and the `reelgate` package installed from today's
 * source as `pip install ./clients/python` installs it (not editable; offline: setuptools is in the venv). Returns
 * its python path.
 */
export async function ensureClientEnv({ log } = {}) {
	const python = await ensureVenv({
		venvDir: path.join(CLIENT_DIR, ".venv"),
		requirements: [path.join(CLIENT_DIR, "requirements-test.txt")],
		label: "the Python client's tests",
		log,
	});
	const pip = ["-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--force-reinstall", CLIENT_DIR];
	await run(python, pip, CLIENT_DIR);
	return python;
}
