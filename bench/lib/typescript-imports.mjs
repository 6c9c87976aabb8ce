// Lets the benchmarks import the project's TypeScript test doubles (test/emulators, test/helpers) in plain Node:
// Node 22 strips the types itself, but its ESM resolver wants file extensions and the project writes relative
// imports without them (vite resolves those for vitest). This resolve hook retries such imports with `.ts`.
import { registerHooks } from "node:module";

registerHooks({
	resolve(specifier, context, nextResolve) {
		try {
			return nextResolve(specifier, context);
		} catch (err) {
			const relative = specifier.startsWith("./") || specifier.startsWith("../");
			if (!relative || /\.[cm]?[jt]s$/.test(specifier)) throw err;
			return nextResolve(`${specifier}.ts`, context);
		}
	},
});
