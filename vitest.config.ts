import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig(async () => {
	const migrations = await readD1Migrations(path.join(import.meta.dirname, "migrations"));
	return {
		plugins: [
			cloudflareTest({
				main: "./src/index.ts",
				wrangler: { configPath: "./wrangler.toml" },
				miniflare: {
					bindings: {
						TEST_MIGRATIONS: migrations,
						ADMIN_TOKEN: "test-admin-token",
						SIGNING_SECRET: "test-signing-secret-0123456789abcdef",
						BACKEND_SECRETS_KEY: "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
						PUBLIC_URL: "http://reelgate.test",
						// Webhook tests post to a receiver on 127.0.0.1 (test/emulators/webhook-receiver).
						ALLOW_LOOPBACK_WEBHOOKS: "true",
						// Revocation tests watch an open event stream end without waiting the default 15 s.
						EVENT_STREAM_REAUTH_MS: "200",
					},
				},
			}),
		],
		test: {
			include: ["test/unit/**/*.test.ts", "test/integration/**/*.test.ts"],
			setupFiles: ["./test/helpers/apply-migrations.ts"],
			globalSetup: ["./test/helpers/global-setup.ts"],
			testTimeout: 30_000,
			silent: "passed-only" as const,
		},
	};
});
