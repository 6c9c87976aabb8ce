import { defineConfig } from "vitest/config";

// The SDK's unit tests run in plain Node: the SDK targets Node, browsers and Workers, none of them workerd-only.
export default defineConfig({
	test: {
		include: ["test/sdk/**/*.test.ts"],
		environment: "node",
		testTimeout: 20_000,
	},
});
