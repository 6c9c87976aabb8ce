import { defineConfig } from "vitest/config";

// The end-to-end suite runs in Node against the real local stack (scripts/start.mjs), not in workerd.
export default defineConfig({
	test: {
		include: ["test/e2e/**/*.test.ts"],
		environment: "node",
		// One stack at a time: each file starts its own processes on free ports.
		fileParallelism: false,
		testTimeout: 180_000,
		hookTimeout: 420_000,
	},
});
