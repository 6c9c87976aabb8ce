// Module hooks for Node versions that do not strip types (see typescript-imports.mjs): extensionless relative
// imports retried with `.ts`, and `.ts` files turned into JavaScript by esbuild (types dropped, nothing bundled).
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

export async function resolve(specifier, context, nextResolve) {
	try {
		return await nextResolve(specifier, context);
	} catch (err) {
		const relative = specifier.startsWith("./") || specifier.startsWith("../");
		if (!relative || /\.[cm]?[jt]s$/.test(specifier)) throw err;
		return nextResolve(`${specifier}.ts`, context);
	}
}

export async function load(url, context, nextLoad) {
	if (!url.startsWith("file:") || !url.endsWith(".ts")) return nextLoad(url, context);
	const { transform } = await import("esbuild");
	const source = await readFile(fileURLToPath(url), "utf8");
	const { code } = await transform(source, { loader: "ts", format: "esm", sourcefile: fileURLToPath(url) });
	return { format: "module", source: code, shortCircuit: true };
}
