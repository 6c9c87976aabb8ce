import { defineConfig } from "vitest/config";

// The chaos run drives the real local runtime (scripts/start.mjs → wrangler dev) from Node, with the GPU
// emulators in this process, and restarts that runtime while jobs are in flight (test/chaos/chaos.test.ts).
export default defineConfig({
	test: {
		include: ["test/chaos/**/*.test.ts"],
		environment: "node",
		fileParallelism: false,
		testTimeout: 720_000,
		hookTimeout: 300_000,
	},
});
