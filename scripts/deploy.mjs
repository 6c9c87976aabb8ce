#!/usr/bin/env node
// `npm run deploy [-- --env staging|production]`: everything a Cloudflare deploy needs, in order, each step
// safe to run again:
//   1. the R2 bucket exists (created if not) with CORS rules for browser uploads,
//   2. the D1 database exists (created if not) and wrangler.toml carries its id,
//   3. migrations are applied to the remote database,
//   4. `wrangler deploy --env <env>` (the top-level [vars] the environment does not override are passed along,
//      since wrangler does not inherit vars into environments),
//   5. the Worker's required secrets are checked; missing ones are named with the command that sets them.
// `--dry-run` only builds (`wrangler deploy --dry-run`), needing no account. No secret value is ever printed.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { CLOUDFLARE_API_BASE, cloudflareApi, corsRules } from "./lib/cloudflare-api.mjs";
import { HttpError } from "./lib/http-json.mjs";
import { ROOT, toolEnv, wranglerArgv } from "./lib/paths.mjs";
import { parseToml } from "./lib/toml-lite.mjs";
import { copyVendorAssets } from "./lib/web-vendor.mjs";

export const ENVIRONMENTS = ["staging", "production"];
/** Secrets the Worker needs, with how to make a good value for each. */
export const REQUIRED_SECRETS = {
	ADMIN_TOKEN: "a long random token for /v1/admin/* (keep it in your password manager): openssl rand -base64 32",
	SIGNING_SECRET: "32+ random bytes for signed URLs: openssl rand -base64 32",
	BACKEND_SECRETS_KEY: "base64 of 32 random bytes, encrypts backend API keys at rest: openssl rand -base64 32",
};
/** Secrets `--generate-secrets` may create: nobody needs to read them back (ADMIN_TOKEN is yours to choose). */
const GENERATABLE = ["SIGNING_SECRET", "BACKEND_SECRETS_KEY"];

const USAGE = `Usage: npm run deploy -- [--env staging|production] [--dry-run] [--generate-secrets] [--config wrangler.toml]
Needs CLOUDFLARE_API_TOKEN (Workers Scripts, D1, R2 edit) and CLOUDFLARE_ACCOUNT_ID, except with --dry-run.`;

export class DeployError extends Error {}

/** What an environment deploys as: the Worker name, bucket, database and the vars to pass along. */
export function resolveEnvironment(config, envName) {
	const env = config.env?.[envName];
	if (!env) throw new DeployError(`wrangler.toml has no [env.${envName}] section.`);
	const d1 = env.d1_databases?.find((d) => d.binding === "DB");
	const r2 = env.r2_buckets?.find((b) => b.binding === "BUCKET");
	if (!d1?.database_name) throw new DeployError(`[[env.${envName}.d1_databases]] with binding "DB" is missing.`);
	if (!r2?.bucket_name) throw new DeployError(`[[env.${envName}.r2_buckets]] with binding "BUCKET" is missing.`);
	// Bindings are not inherited: a Durable Object added at the top level but not here would deploy without it.
	const names = (list) => new Set((list ?? []).map((b) => b.name));
	const envDos = names(env.durable_objects?.bindings);
	const lacking = [...names(config.durable_objects?.bindings)].filter((n) => !envDos.has(n));
	if (lacking.length) {
		throw new DeployError(
			`[env.${envName}] lacks the Durable Object binding(s) ${lacking.join(", ")} declared at the top level of wrangler.toml: add [[env.${envName}.durable_objects.bindings]] for each.`,
		);
	}
	const vars = { ...(config.vars ?? {}), ...(env.vars ?? {}) };
	// The vars only the top level declares go to `wrangler deploy --var`: environments do not inherit [vars].
	const inherited = Object.fromEntries(Object.entries(config.vars ?? {}).filter(([k]) => !(k in (env.vars ?? {}))));
	return {
		name: env.name ?? `${config.name}-${envName}`,
		databaseName: d1.database_name,
		databaseId: d1.database_id ?? null,
		bucketName: r2.bucket_name,
		vars,
		inherited,
	};
}

/** Writes the database id into the environment's d1 block of wrangler.toml (only that one line changes). */
export function setDatabaseId(tomlText, envName, databaseId) {
	const lines = tomlText.split("\n");
	const header = lines.findIndex((l) => l.trim() === `[[env.${envName}.d1_databases]]`);
	if (header < 0) throw new DeployError(`[[env.${envName}.d1_databases]] not found in wrangler.toml.`);
	for (let i = header + 1; i < lines.length && !lines[i].trim().startsWith("["); i++) {
		if (/^\s*database_id\s*=/.test(lines[i])) {
			lines[i] = lines[i].replace(/=\s*"[^"]*"/, `= "${databaseId}"`);
			return lines.join("\n");
		}
	}
	lines.splice(header + 1, 0, `database_id = "${databaseId}"`);
	return lines.join("\n");
}

/**
 * Runs wrangler with the pinned Node; resolves with its exit code. `input` goes to its stdin (for secrets, so
 * they never appear in an argument list or on screen).
 */
export function runWrangler(args, { input, env } = {}) {
	return new Promise((resolve) => {
		const [node, argv] = wranglerArgv(args);
		const child = spawn(node, argv, {
			cwd: ROOT,
			env: toolEnv(env),
			stdio: [input === undefined ? "inherit" : "pipe", "inherit", "inherit"],
		});
		if (input !== undefined) child.stdin.end(input);
		child.on("error", () => resolve(127));
		child.on("close", (code) => resolve(code ?? 1));
	});
}

/**
 * The deploy. `io` is injectable (the Cloudflare API's fetch, the wrangler runner, the config path, logging) so
 * the tests drive it against an emulator without touching an account.
 */
export async function deploy(argv, io = {}) {
	const { values: opts } = parseArgs({
		args: argv,
		options: {
			env: { type: "string", default: "production" },
			"dry-run": { type: "boolean", default: false },
			"generate-secrets": { type: "boolean", default: false },
			config: { type: "string", default: path.join(ROOT, "wrangler.toml") },
			help: { type: "boolean", short: "h", default: false },
		},
	});
	const log = io.log ?? ((l) => console.log(l));
	const wrangler = io.wrangler ?? runWrangler;
	const env = io.env ?? process.env;
	if (opts.help) return log(USAGE);
	if (!ENVIRONMENTS.includes(opts.env)) throw new DeployError(`--env must be one of ${ENVIRONMENTS.join(", ")}.`);
	const configPath = path.resolve(opts.config);
	const config = parseToml(readFileSync(configPath, "utf8"));
	const target = resolveEnvironment(config, opts.env);
	const varFlags = Object.entries(target.inherited).flatMap(([k, v]) => ["--var", `${k}:${v}`]);
	const configFlags = ["--config", configPath, "--env", opts.env];
	// The static assets include third-party files copied from node_modules (the API reference renderer).
	copyVendorAssets();

	if (opts["dry-run"]) {
		log(`Building ${target.name} (dry run, nothing is uploaded)…`);
		const code = await wrangler([
			"deploy",
			"--dry-run",
			"--outdir",
			path.join(ROOT, "dist"),
			...configFlags,
			...varFlags,
		]);
		if (code !== 0) throw new DeployError(`wrangler deploy --dry-run exited ${code}.`);
		log("✓ The Worker builds.");
		return { target, steps: ["dry-run"] };
	}

	const missing = ["CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID"].filter((k) => !env[k]);
	if (missing.length) {
		throw new DeployError(
			`${missing.join(" and ")} not set. Create an API token with "Workers Scripts: Edit", "D1: Edit" and "Workers R2 Storage: Edit" at https://dash.cloudflare.com/profile/api-tokens, then:\n  export CLOUDFLARE_API_TOKEN=...\n  export CLOUDFLARE_ACCOUNT_ID=...   # the dashboard's Account ID`,
		);
	}
	const cf = cloudflareApi({
		token: env.CLOUDFLARE_API_TOKEN,
		accountId: env.CLOUDFLARE_ACCOUNT_ID,
		base: env.CLOUDFLARE_API_BASE_URL || CLOUDFLARE_API_BASE,
		fetch: io.fetch,
	});
	log(`Deploying ${target.name} (env ${opts.env})`);

	// 1. R2 bucket and its CORS rules.
	const buckets = await cf.listBuckets();
	if (buckets.some((b) => b.name === target.bucketName)) log(`✓ R2 bucket ${target.bucketName} exists`);
	else {
		await cf.createBucket(target.bucketName);
		log(`✓ R2 bucket ${target.bucketName} created`);
	}
	const origins = String(target.vars.CORS_ORIGINS ?? "*")
		.split(",")
		.map((s) => s.trim())
		.filter(Boolean);
	const rules = corsRules(origins);
	const current = await cf.getBucketCors(target.bucketName);
	if (JSON.stringify(current) === JSON.stringify(rules)) log("✓ R2 CORS rules up to date");
	else {
		await cf.putBucketCors(target.bucketName, rules);
		log(`✓ R2 CORS rules set (origins: ${origins.join(", ")})`);
	}

	// 2. D1 database, and its id in wrangler.toml.
	let db = await cf.findDatabase(target.databaseName);
	if (db) log(`✓ D1 database ${target.databaseName} exists (${db.uuid})`);
	else {
		db = await cf.createDatabase(target.databaseName);
		log(`✓ D1 database ${target.databaseName} created (${db.uuid})`);
	}
	if (target.databaseId !== db.uuid) {
		writeFileSync(configPath, setDatabaseId(readFileSync(configPath, "utf8"), opts.env, db.uuid));
		log(`✓ wrangler.toml: env.${opts.env} database_id set to ${db.uuid} (commit this change)`);
	}

	// 3. Migrations, remotely.
	const migrated = await wrangler(["d1", "migrations", "apply", "DB", "--remote", ...configFlags]);
	if (migrated !== 0) throw new DeployError(`wrangler d1 migrations apply exited ${migrated}.`);
	log("✓ D1 migrations applied");

	// 4. The Worker.
	const deployed = await wrangler(["deploy", ...configFlags, ...varFlags]);
	if (deployed !== 0) throw new DeployError(`wrangler deploy exited ${deployed}.`);
	log(`✓ Worker ${target.name} deployed`);

	// 5. Secrets: listed by name only; values never leave Cloudflare.
	const have = new Set(await cf.listSecretNames(target.name));
	let absent = Object.keys(REQUIRED_SECRETS).filter((s) => !have.has(s));
	if (opts["generate-secrets"]) {
		for (const name of absent.filter((s) => GENERATABLE.includes(s))) {
			const code = await wrangler(["secret", "put", name, ...configFlags], {
				input: randomBytes(32).toString("base64"),
			});
			if (code !== 0) throw new DeployError(`wrangler secret put ${name} exited ${code}.`);
			log(`✓ Secret ${name} generated and set`);
		}
		absent = absent.filter((s) => !GENERATABLE.includes(s));
	}
	if (absent.length) {
		log(
			`\n! Missing secrets on ${target.name}: ${absent.join(", ")}. Set each (the value is read from the prompt, never echoed):`,
		);
		for (const s of absent) log(`  npx wrangler secret put ${s} --env ${opts.env}    # ${REQUIRED_SECRETS[s]}`);
		log("  (or run again with --generate-secrets for SIGNING_SECRET and BACKEND_SECRETS_KEY)");
	} else log(`✓ Secrets set: ${Object.keys(REQUIRED_SECRETS).join(", ")}`);
	return { target, databaseId: db.uuid, missingSecrets: absent };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
	deploy(process.argv.slice(2)).then(
		(r) => process.exit(r?.missingSecrets?.length ? 3 : 0),
		(err) => {
			const known = err instanceof DeployError || err instanceof HttpError || err?.code?.startsWith?.("ERR_PARSE_ARGS");
			console.error(`Error: ${known ? err.message : (err?.stack ?? err)}`);
			process.exit(known ? 2 : 1);
		},
	);
}
