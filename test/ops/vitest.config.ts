import { defineConfig } from "vitest/config";

// The operations suite runs in Node: the deploy scripts against emulators of RunPod's REST API and of the
// Cloudflare API, the cost model and the keep-warm schedule as pure functions.
export default defineConfig({
	test: {
		include: ["test/ops/**/*.test.mjs", "test/ops/**/*.test.ts"],
		environment: "node",
		testTimeout: 120_000,
	},
});
