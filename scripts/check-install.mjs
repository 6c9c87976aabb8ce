#!/usr/bin/env node
// Checks, offline and from the files alone, that a fresh clone installs with `npm ci` on any platform and that a
// newer npm (12 blocks unapproved dependency install scripts) still installs a working stack:
// - every optional dependency a locked package declares (the other platforms' binaries of biome, workerd, esbuild,
//   …) is itself in the lock, as `npm ci` requires; a lock written where only one platform's binaries resolve
//   lacks them, and `npm install` then rewrites it;
// - every registry entry records its download address and integrity: npm trusts a pinned `allowScripts` approval
//   only against the address in the lock (https://docs.npmjs.com/cli/v11/commands/npm-approve-scripts), and the
//   project's .npmrc keeps npm writing them;
// - `allowScripts` decides every locked package that has an install script: approved pinned to its locked version
//   where the stack needs the script (workerd's and esbuild's binaries, the pinned node), or denied by name where it
//   does not (vue-demi, deep in the API reference renderer's tree, only switches Vue versions for source builds; the
//   renderer is served from its prebuilt standalone bundle); no approval is left for a package that is not locked.
// Exits 1 with one line per problem.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8"));
const lock = JSON.parse(readFileSync(path.join(root, "package-lock.json"), "utf8"));
const npmrc = readFileSync(path.join(root, ".npmrc"), "utf8");

const problems = [];
const entries = Object.entries(lock.packages ?? {}).filter(([where]) => where !== "");

/** The package name of a lock key such as `node_modules/a/node_modules/@s/b`. */
const nameOf = (where, entry) => entry.name ?? where.slice(where.lastIndexOf("node_modules/") + "node_modules/".length);

/** Where node resolution from `from` would find `name`: the nearest node_modules up the tree. */
function resolves(from, name) {
	let dir = from;
	for (;;) {
		if (lock.packages[`${dir ? `${dir}/` : ""}node_modules/${name}`]) return true;
		if (!dir) return false;
		const up = dir.lastIndexOf("node_modules/");
		dir = up <= 0 ? "" : dir.slice(0, up - 1);
	}
}

if (lock.lockfileVersion !== 3) problems.push(`package-lock.json: lockfileVersion ${lock.lockfileVersion}, expected 3`);
if (!/^\s*omit-lockfile-registry-resolved\s*=\s*false\s*$/m.test(npmrc)) {
	problems.push(".npmrc: must set omit-lockfile-registry-resolved=false so the lock keeps download addresses");
}

for (const [where, entry] of entries) {
	if (entry.link) continue;
	const name = nameOf(where, entry);
	for (const dep of Object.keys(entry.optionalDependencies ?? {})) {
		if (!resolves(where, dep))
			problems.push(`package-lock.json: ${name} declares optional ${dep}, which is not locked`);
	}
	if (!entry.resolved?.startsWith("https://registry.npmjs.org/")) {
		problems.push(`package-lock.json: ${where} has no registry address ("resolved")`);
	}
	if (!entry.integrity?.startsWith("sha512-")) problems.push(`package-lock.json: ${where} has no sha512 integrity`);
}

const needed = new Set(entries.filter(([, e]) => e.hasInstallScript).map(([w, e]) => `${nameOf(w, e)}@${e.version}`));
const approved = pkg.allowScripts ?? {};
for (const spec of needed) {
	if (approved[spec.slice(0, spec.lastIndexOf("@"))] === false) continue;
	if (approved[spec] !== true)
		problems.push(`package.json allowScripts: approve "${spec}": true, or deny it by name (it has an install script)`);
}
for (const [spec, allowed] of Object.entries(approved)) {
	if (allowed === true && !needed.has(spec)) {
		problems.push(`package.json allowScripts: "${spec}" is approved but no locked package of that version needs it`);
	}
}

for (const p of problems) console.error(p);
if (problems.length) process.exit(1);
console.log(`install check: ${entries.length} locked packages, ${needed.size} install scripts decided (approved or denied)`);
