// What the machine must have for the test suites, and how to get what it lacks.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";

function which(name) {
	for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
		if (!dir) continue;
		const p = path.join(dir, name);
		if (existsSync(p)) return p;
	}
	return undefined;
}

/** The first python3 (≥ 3.11, with venv and ensurepip) on PATH, or a reason why there is none. */
export function findPython() {
	const seen = [];
	for (const name of ["python3", "python3.13", "python3.12", "python3.11", "python"]) {
		const exe = which(name);
		if (!exe) continue;
		const r = spawnSync(exe, ["-c", "import sys, venv, ensurepip; print('%d.%d' % sys.version_info[:2])"], {
			encoding: "utf8",
			timeout: 20_000,
		});
		const version = r.stdout?.trim();
		if (r.status === 0 && version) {
			const [maj, min] = version.split(".").map(Number);
			if (maj === 3 && min >= 11) return { exe, version };
			seen.push(`${exe} is ${version}`);
		} else {
			const why = r.error ? r.error.message : (r.stderr ?? "").trim().split("\n").at(-1) || `exit ${r.status}`;
			seen.push(`${exe}: no usable venv/ensurepip (${why})`);
		}
	}
	return { reason: seen.length ? seen.join("; ") : "no python3 on PATH" };
}

/** Chromium for the browser checks: an explicit CHROME_PATH/CHROMIUM_PATH, else the usual binary names. */
export function findChromium() {
	for (const env of ["CHROMIUM_PATH", "CHROME_PATH"]) {
		if (process.env[env] && existsSync(process.env[env])) return process.env[env];
	}
	for (const name of ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]) {
		const p = which(name);
		if (p) return p;
	}
	return undefined;
}

/**
 * Checks the system tools. `required` ones make the suites that need them fail when absent; `optional` ones
 * (ffmpeg, chromium) are required only under CI=true, and elsewhere only the checks using them are skipped.
 */
export function preflight() {
	const ci = process.env.CI === "true" || process.env.CI === "1";
	const python = findPython();
	const ffmpeg = which("ffmpeg");
	const ffprobe = which("ffprobe");
	const chromium = findChromium();
	const problems = [];
	if (!python.exe) {
		problems.push({
			tool: "python3",
			suites: ["python", "e2e", "browser", "fuzz"],
			message: `python3 ≥ 3.11 with venv is missing (${python.reason}). Install it: apt-get install python3 python3-venv`,
		});
	}
	if (!ffmpeg || !ffprobe) {
		problems.push({
			tool: "ffmpeg",
			optional: true,
			message:
				"ffmpeg/ffprobe are missing: the video checks (ffprobe of the rendered MP4) need them. Install: apt-get install ffmpeg",
		});
	}
	if (!chromium) {
		problems.push({
			tool: "chromium",
			optional: true,
			message: "chromium is missing: the browser checks of the demo page need it. Install: apt-get install chromium",
		});
	}
	const env = {
		...(ffprobe ? { FFPROBE: ffprobe } : {}),
		...(ffmpeg ? { FFMPEG: ffmpeg } : {}),
		...(chromium ? { CHROMIUM_PATH: chromium } : {}),
		...(ci ? { REELGATE_REQUIRE_TOOLS: "1" } : {}),
	};
	return { ci, python, problems, env };
}
