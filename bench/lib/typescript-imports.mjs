// Lets the benchmarks import the project's TypeScript test doubles (test/emulators, test/helpers) in plain Node.
// The project writes relative imports without extensions (vite resolves those for vitest): the resolve hook
// retries such imports with `.ts`. Node 22 strips the types itself (synchronous hooks); Node 20 has neither, so
// there the hooks run off-thread (module.register) and esbuild, which wrangler already brings, strips them.
import * as nodeModule from "node:module";

if (typeof nodeModule.registerHooks === "function" && process.features?.typescript) {
	nodeModule.registerHooks({ resolve: resolveSync() });
} else {
	nodeModule.register("./typescript-hooks.mjs", import.meta.url);
}

/** The same retry for Node 22's synchronous hooks. */
function resolveSync() {
	return (specifier, context, nextResolve) => {
		try {
			return nextResolve(specifier, context);
		} catch (err) {
			const relative = specifier.startsWith("./") || specifier.startsWith("../");
			if (!relative || /\.[cm]?[jt]s$/.test(specifier)) throw err;
			return nextResolve(`${specifier}.ts`, context);
		}
	};
}
