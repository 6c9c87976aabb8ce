import { defineConfig } from "vitest/config";

// The schema fuzz suite runs schemathesis (Python, test/fuzz/.venv) in Node against the real local stack.
export default defineConfig({
	test: {
		include: ["test/fuzz/**/*.test.ts"],
		environment: "node",
		fileParallelism: false,
		testTimeout: 60_000,
		// Venv set-up on a first run, the stack's start, the seed job and both schemathesis runs.
		hookTimeout: 900_000,
	},
});
