import { defineConfig } from "vitest/config";

// The demo page in a real Chromium and the CLI, both against one real local stack started by the global setup.
export default defineConfig({
	test: {
		include: ["test/browser/**/*.test.ts"],
		environment: "node",
		globalSetup: ["./test/browser/global-setup.ts"],
		// Both files share the one stack; one at a time keeps the CPU renderer's timings predictable.
		fileParallelism: false,
		testTimeout: 240_000,
		hookTimeout: 420_000,
	},
});
