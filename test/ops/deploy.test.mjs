import { copyFileSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DeployError, deploy, resolveEnvironment, runWrangler, setDatabaseId } from "../../scripts/deploy.mjs";
import { ROOT } from "../../scripts/lib/paths.mjs";
import { parseToml } from "../../scripts/lib/toml-lite.mjs";
import { startCloudflareApi } from "../emulators/cloudflare-api/server.mjs";
import { collector } from "./helpers.mjs";

// The checks the script makes itself hit the Cloudflare API emulator. wrangler's own calls go through a runner:
// `d1 migrations apply --remote` runs the real wrangler against the emulator (CLOUDFLARE_API_BASE_URL), while
// `deploy` and `secret put` are recorded, since emulating every route a script upload touches (bindings,
// assets, Durable Object migrations, routes) is out of reach; `--dry-run` builds with the real wrangler.
let cf;
let dir;
let config;

beforeAll(async () => {
	cf = await startCloudflareApi();
});
afterAll(async () => {
	await cf.close();
});
beforeEach(() => {
	dir = mkdtempSync(path.join(tmpdir(), "reelgate-deploy-"));
	config = path.join(dir, "wrangler.toml");
	copyFileSync(path.join(ROOT, "wrangler.toml"), config);
	return () => rmSync(dir, { recursive: true, force: true });
});

function fakeWrangler(codes = {}) {
	const calls = [];
	const runner = async (args, opts = {}) => {
		calls.push({ args, input: opts.input });
		return codes[args[0]] ?? 0;
	};
	return { calls, runner };
}

const cfEnv = () => ({
	CLOUDFLARE_API_TOKEN: cf.token,
	CLOUDFLARE_ACCOUNT_ID: cf.accountId,
	CLOUDFLARE_API_BASE_URL: cf.url,
});

describe("npm run deploy", () => {
	it("creates the bucket (with CORS) and the database, migrates, deploys and names the missing secrets", async () => {
		const w = fakeWrangler();
		const out = collector();
		const r = await deploy(["--env", "staging", "--config", config], {
			env: cfEnv(),
			wrangler: w.runner,
			log: out.log,
		});

		expect(cf.state.buckets.has("reelgate-staging-media")).toBe(true);
		const [rule] = cf.state.cors.get("reelgate-staging-media");
		expect(rule.allowed.methods).toEqual(["GET", "PUT", "HEAD"]);
		expect(rule.allowed.origins).toEqual(["*"]);
		const [db] = cf.state.databases.values();
		expect(db.name).toBe("reelgate-staging");
		expect(r.databaseId).toBe(db.uuid);
		// The id lands in the staging block only.
		const toml = parseToml(readFileSync(config, "utf8"));
		expect(toml.env.staging.d1_databases[0].database_id).toBe(db.uuid);
		expect(toml.env.production.d1_databases[0].database_id).toBe("00000000-0000-0000-0000-000000000000");

		expect(w.calls.map((c) => c.args.slice(0, 3).join(" "))).toEqual([
			"d1 migrations apply",
			`deploy --config ${config}`,
		]);
		expect(w.calls[0].args).toEqual([
			"d1",
			"migrations",
			"apply",
			"DB",
			"--remote",
			"--config",
			config,
			"--env",
			"staging",
		]);
		const deployArgs = w.calls[1].args;
		expect(deployArgs).toContain("--env");
		// Top-level vars the environment does not set are passed along; its own are not overridden.
		expect(deployArgs).toContain("JOB_DEADLINE_S:3600");
		expect(deployArgs.filter((a) => a.startsWith("CORS_ORIGINS:"))).toEqual([]);

		expect(r.missingSecrets).toEqual(["ADMIN_TOKEN", "SIGNING_SECRET", "BACKEND_SECRETS_KEY"]);
		expect(out.text()).toMatch(/npx wrangler secret put ADMIN_TOKEN --env staging/);
	});

	it("is idempotent, and --generate-secrets sets the machine-only secrets through stdin", async () => {
		const w = fakeWrangler();
		const out = collector();
		const before = cf.requests.filter((q) => q.method === "POST").length;
		cf.state.secrets.set("reelgate-staging", new Set(["ADMIN_TOKEN"]));
		const r = await deploy(["--env", "staging", "--config", config, "--generate-secrets"], {
			env: cfEnv(),
			wrangler: w.runner,
			log: out.log,
		});
		expect(cf.requests.filter((q) => q.method === "POST").length).toBe(before); // nothing created again
		expect(out.text()).toMatch(/R2 bucket reelgate-staging-media exists/);
		expect(out.text()).toMatch(/CORS rules up to date/);
		const puts = w.calls.filter((c) => c.args[0] === "secret");
		expect(puts.map((c) => c.args[2])).toEqual(["SIGNING_SECRET", "BACKEND_SECRETS_KEY"]);
		for (const p of puts) {
			expect(Buffer.from(p.input, "base64")).toHaveLength(32);
			expect(out.text()).not.toContain(p.input);
		}
		expect(r.missingSecrets).toEqual([]);
	});

	it("fails clearly without credentials, on a bad token, and when wrangler fails", async () => {
		await expect(
			deploy(["--env", "staging", "--config", config], { env: {}, wrangler: fakeWrangler().runner, log: () => {} }),
		).rejects.toThrow(/CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID not set/);
		const badToken = { ...cfEnv(), CLOUDFLARE_API_TOKEN: "nope-nope-nope" };
		const err = await deploy(["--env", "staging", "--config", config], {
			env: badToken,
			wrangler: fakeWrangler().runner,
			log: () => {},
		}).catch((e) => e);
		expect(err.message).toMatch(/403/);
		expect(err.message).not.toContain("nope-nope-nope");
		await expect(
			deploy(["--env", "production", "--config", config], {
				env: cfEnv(),
				wrangler: fakeWrangler({ d1: 1 }).runner,
				log: () => {},
			}),
		).rejects.toThrow(/migrations apply exited 1/);
		await expect(deploy(["--env", "dev", "--config", config], { env: cfEnv(), log: () => {} })).rejects.toThrow(
			DeployError,
		);
	});

	it("every environment declares the Durable Objects and the bindings the Worker needs", () => {
		const toml = parseToml(readFileSync(path.join(ROOT, "wrangler.toml"), "utf8"));
		for (const env of ["staging", "production"]) {
			const t = resolveEnvironment(toml, env);
			expect(t.name).toMatch(/^reelgate/);
			expect(toml.env[env].analytics_engine_datasets[0].binding).toBe("METRICS");
		}
		expect(toml.triggers.crons).toContain("*/5 * * * *");
		const fake = {
			name: "x",
			durable_objects: { bindings: [{ name: "JOBS" }, { name: "NEW" }] },
			env: {
				staging: {
					d1_databases: [{ binding: "DB", database_name: "d" }],
					r2_buckets: [{ binding: "BUCKET", bucket_name: "b" }],
					durable_objects: { bindings: [{ name: "JOBS" }] },
				},
			},
		};
		expect(() => resolveEnvironment(fake, "staging")).toThrow(/lacks the Durable Object binding\(s\) NEW/);
	});

	it("applies the real migrations with the real wrangler against the emulated D1", async () => {
		cpSync(path.join(ROOT, "migrations"), path.join(dir, "migrations"), { recursive: true });
		const recorded = [];
		const runner = (args, opts) => {
			if (args[0] === "d1")
				return runWrangler(args, { ...opts, env: { ...cfEnv(), CI: "true", WRANGLER_SEND_METRICS: "false" } });
			recorded.push(args);
			return Promise.resolve(0);
		};
		const r = await deploy(["--env", "production", "--config", config], {
			env: cfEnv(),
			wrangler: runner,
			log: () => {},
		});
		const db = cf.state.databases.get(r.databaseId);
		const tables = db.sqlite
			.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
			.all()
			.map((t) => t.name);
		expect(tables).toEqual(
			expect.arrayContaining(["accounts", "jobs", "backends", "keep_warm_pings", "d1_migrations"]),
		);
		const applied = db.sqlite
			.prepare("SELECT name FROM d1_migrations ORDER BY id")
			.all()
			.map((m) => m.name);
		expect(applied).toEqual(
			readdirSync(path.join(ROOT, "migrations"))
				.filter((f) => f.endsWith(".sql"))
				.sort(),
		);
		expect(recorded.map((a) => a[0])).toEqual(["deploy"]);
	});

	it("setDatabaseId changes one line", () => {
		const text =
			'[[env.staging.d1_databases]]\nbinding = "DB"\ndatabase_id = "old"\n\n[[env.production.d1_databases]]\ndatabase_id = "keep"\n';
		expect(setDatabaseId(text, "staging", "new")).toBe(text.replace('"old"', '"new"'));
	});

	it("--dry-run builds each environment with the real wrangler (no account needed)", async () => {
		for (const env of ["staging", "production"]) {
			const out = collector();
			// The real wrangler.toml: its paths (main, assets) are relative to where it lives.
			await deploy(["--env", env, "--dry-run"], { env: {}, log: out.log });
			expect(out.text()).toMatch(/The Worker builds/);
		}
	});
});
