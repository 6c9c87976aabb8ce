import { defineConfig } from "vitest/config";

/** The Node-side suite: the pure R2 presigner against a real S3 server (versitygw) and the AWS SDK. */
export default defineConfig({
	test: {
		include: ["test/s3/**/*.test.ts"],
		environment: "node",
		testTimeout: 60_000,
		hookTimeout: 600_000,
	},
});
