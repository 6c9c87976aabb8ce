// Third-party files the Worker serves as static assets, copied from their npm packages into web/vendor/ (git-ignored)
// before the Worker starts or deploys, so nothing built is committed and no page loads a script from a CDN.
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ROOT } from "./paths.mjs";

export const VENDOR_DIR = path.join(ROOT, "web", "vendor");

/**
 * The API reference renderer: Scalar's standalone browser bundle (MIT; https://github.com/scalar/scalar), served at
 * /vendor/scalar/api-reference.js for /docs.
 */
const FILES = [
	{
		pkg: "@scalar/api-reference",
		from: "dist/browser/standalone.js",
		to: "scalar/api-reference.js",
		licence: "MIT License, https://github.com/scalar/scalar/blob/main/LICENSE",
	},
];

/**
 * Copies each file whose package version or size changed since the last copy; returns the paths it wrote.
 * Throws with the fix when a package is not installed.
 */
export function copyVendorAssets(root = ROOT) {
	const written = [];
	for (const file of FILES) {
		const pkgDir = path.join(root, "node_modules", ...file.pkg.split("/"));
		const source = path.join(pkgDir, file.from);
		if (!existsSync(source)) {
			throw new Error(`${file.pkg} is not installed (${path.relative(root, source)} is missing): run \`npm install\``);
		}
		const { version } = JSON.parse(readFileSync(path.join(pkgDir, "package.json"), "utf8"));
		const target = path.join(root, "web", "vendor", file.to);
		const notice = `${target}.NOTICE.txt`;
		const stamp = `${file.pkg}@${version}, ${statSync(source).size} bytes`;
		if (existsSync(target) && existsSync(notice) && readFileSync(notice, "utf8").startsWith(stamp)) continue;
		mkdirSync(path.dirname(target), { recursive: true });
		copyFileSync(source, target);
		writeFileSync(notice, `${stamp}\nCopied from ${file.pkg}/${file.from}. ${file.licence}\n`);
		written.push(target);
	}
	return written;
}
