// Where things are, and how to run the repository's own tools (wrangler needs the pinned Node 22).
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const BIN = path.join(ROOT, "node_modules", ".bin");
export const DEV_VARS = path.join(ROOT, ".dev.vars");

/** The pinned Node (node@22 devDependency) when installed, else the one running this script. */
export function nodeBinary() {
	const pinned = path.join(BIN, "node");
	return existsSync(pinned) ? pinned : process.execPath;
}

/** An environment whose PATH starts with node_modules/.bin, so `#!/usr/bin/env node` tools get Node 22. */
export function toolEnv(extra = {}) {
	return { ...process.env, PATH: `${BIN}${path.delimiter}${process.env.PATH ?? ""}`, ...extra };
}

/**
 * argv for running wrangler with the pinned Node, without a shell.
 * @param {string[]} args
 * @returns {[string, string[]]}
 */
export function wranglerArgv(args) {
	return [nodeBinary(), [path.join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js"), ...args]];
}

/**
 * argv for running vitest with the pinned Node, without a shell.
 * @param {string[]} args
 * @returns {[string, string[]]}
 */
export function vitestArgv(args) {
	return [nodeBinary(), [path.join(ROOT, "node_modules", "vitest", "vitest.mjs"), ...args]];
}

export function requireInstalled() {
	if (!existsSync(path.join(ROOT, "node_modules", "wrangler"))) {
		console.error("node_modules is missing: run `npm install` first.");
		process.exit(1);
	}
}
