// The stack the request, job and download benchmarks run against: the bench Worker entry (bench/worker/entry.ts:
// the real Worker plus its `/__bench/*` baselines) with wrangler.toml's bindings (D1, R2, the Durable Objects, the
// vars), fresh secrets, its own throwaway state and the D1 migrations applied. Served either by miniflare's API
// directly (`startMiniflareStack`), or through `wrangler dev`'s machinery (`startWranglerStack`), whose proxy in
// front of workerd costs every request a fixed amount.
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { localTracesEnv } from "../../scripts/lib/local-traces.mjs";

const ROOT = path.resolve(import.meta.dirname, "../..");
const ENTRY = path.join(ROOT, "bench/worker/entry.ts");
const CONFIG = path.join(ROOT, "wrangler.toml");

// wrangler reads .dev.vars and says so on stdout, which is the benchmark's report: keep it to errors.
process.env.WRANGLER_LOG ??= "error";

/**
 * Limits that would otherwise refuse the benchmark's own load (per-key request and job rates, concurrent jobs):
 * the benchmarks measure what a request costs, not how it is refused. Unknown vars are harmless.
 */
export const GENEROUS_LIMITS = {
	RATE_LIMIT_REQUESTS_PER_MINUTE: "100000000",
	RATE_LIMIT_JOBS_PER_MINUTE: "100000000",
	MAX_CONCURRENT_JOBS: "100000000",
};

/**
 * A fresh directory for the stack's local state. `inMemory` puts it on tmpfs (/dev/shm) where there is one: local D1
 * and Durable Object storage sync every write to disk, and on a shared machine that disk's latency, not the API's
 * work, would set the request rate. Large objects (the download benchmark's videos) stay on disk.
 */
function stateDir(inMemory) {
	const base = inMemory && existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
	return mkdtempSync(path.join(base, "reelgate-bench-"));
}

/** Runs `start(state)` in a fresh state directory, and removes the directory again when the start fails. */
async function inStateDir(inMemory, start) {
	const state = stateDir(inMemory);
	try {
		return await start(state);
	} catch (err) {
		rmSync(state, { recursive: true, force: true });
		throw err;
	}
}

function freshSecrets() {
	return {
		ADMIN_TOKEN: randomBytes(24).toString("base64url"),
		SIGNING_SECRET: randomBytes(32).toString("base64url"),
		BACKEND_SECRETS_KEY: randomBytes(32).toString("base64"),
	};
}

/** Every statement of migrations/*.sql, in order. */
async function migrationStatements() {
	const { unstable_splitSqlQuery } = await import("wrangler");
	const dir = path.join(ROOT, "migrations");
	return readdirSync(dir)
		.filter((f) => f.endsWith(".sql"))
		.sort()
		.flatMap((f) => unstable_splitSqlQuery(readFileSync(path.join(dir, f), "utf8")))
		.map((s) => s.trim())
		.filter(Boolean);
}

/** Bundles the bench entry as wrangler would for workerd (ES modules; `cloudflare:` and `node:` left to the runtime). */
async function bundleEntry(outdir) {
	const esbuild = await import("esbuild");
	const outfile = path.join(outdir, "bench-worker.mjs");
	await esbuild.build({
		entryPoints: [ENTRY],
		outfile,
		bundle: true,
		format: "esm",
		platform: "neutral",
		target: "es2022",
		conditions: ["workerd", "worker", "browser"],
		mainFields: ["module", "main"],
		external: ["cloudflare:*", "node:*"],
		logLevel: "error",
	});
	return outfile;
}

/**
 * The admin and client calls every benchmark needs, against one stack: migrations, keys, backends, uploads.
 * Answers `{ status, body }` with the body parsed as JSON when it is JSON.
 */
function stackClient(url, secrets) {
	async function call(method, pathname, { token, body, headers = {} } = {}) {
		const res = await fetch(`${url}${pathname}`, {
			method,
			headers: {
				...(token ? { authorization: `Bearer ${token}` } : {}),
				...(body !== undefined ? { "content-type": "application/json" } : {}),
				...headers,
			},
			body: body === undefined ? undefined : JSON.stringify(body),
		});
		const text = await res.text();
		let parsed = text;
		try {
			parsed = JSON.parse(text);
		} catch {
			// Not JSON: keep the text.
		}
		return { status: res.status, body: parsed };
	}
	async function expect(status, method, pathname, options) {
		const res = await call(method, pathname, options);
		if (res.status !== status) {
			throw new Error(`${method} ${pathname}: expected ${status}, got ${res.status}: ${JSON.stringify(res.body)}`);
		}
		return res.body;
	}
	return {
		url,
		secrets,
		call,
		expect,
		async migrate() {
			const statements = await migrationStatements();
			await expect(200, "POST", "/__bench/migrate", { token: secrets.ADMIN_TOKEN, body: { statements } });
		},
		/** A new API key: `{ id, key, account, scopes }`. */
		createKey(name) {
			return expect(201, "POST", "/v1/admin/keys", { token: secrets.ADMIN_TOKEN, body: { name } });
		},
		putBackend(name, spec) {
			return expect(200, "PUT", `/v1/admin/backends/${name}`, { token: secrets.ADMIN_TOKEN, body: spec });
		},
		/** Uploads `bytes` through the real flow (create, PUT to the signed URL, complete); returns the upload id. */
		async upload(key, filename, contentType, bytes) {
			const created = await expect(201, "POST", "/v1/uploads", {
				token: key,
				body: { filename, content_type: contentType, size: bytes.byteLength },
			});
			const put = await fetch(created.upload.url, {
				method: "PUT",
				headers: created.upload.headers,
				body: bytes,
			});
			await put.arrayBuffer();
			if (!put.ok) throw new Error(`PUT upload: ${put.status}`);
			await expect(200, "POST", `/v1/uploads/${created.id}/complete`, { token: key });
			return created.id;
		},
	};
}

/** The bench entry served by miniflare's API directly: no proxy between the client and workerd. */
export function startMiniflareStack({ vars = {}, inMemory = false, inspectorPort } = {}) {
	return inStateDir(inMemory, (state) => startMiniflare(state, vars, inspectorPort));
}

async function startMiniflare(state, vars, inspectorPort) {
	const [{ Miniflare, convertV4MiniflareOptions }, { unstable_getMiniflareWorkerOptions }] = await Promise.all([
		import("miniflare"),
		import("wrangler"),
	]);
	const scriptPath = await bundleEntry(state);
	const { workerOptions } = unstable_getMiniflareWorkerOptions(CONFIG);
	// The demo page's assets sit in front of the Worker for non-API paths; leaving them out sends every route,
	// the baselines included, straight to the Worker. The cron is not part of any benchmark.
	const { assets: _assets, cronTriggers: _crons, modulesRules: _rules, ...options } = workerOptions;
	const secrets = freshSecrets();
	// wrangler hands back the options in miniflare's v4 shape; miniflare 5 converts them.
	const config = convertV4MiniflareOptions({
		workers: [
			{
				...options,
				name: "reelgate-bench",
				modules: true,
				scriptPath,
				modulesRoot: state,
				bindings: { ...options.bindings, ...secrets, ...GENEROUS_LIMITS, ...vars },
			},
		],
		host: "127.0.0.1",
		port: 0,
		// workerd's V8 inspector, for the CPU profile of bench/profile.mjs.
		...(inspectorPort ? { inspectorPort } : {}),
		resourcePersistencePath: path.join(state, "persist"),
		cf: false,
		// The Worker logs a line per request; the report is this process's stdout, so only errors go on, to stderr.
		handleStructuredLogs: ({ level, message }) => {
			if (level === "error") process.stderr.write(`${message}\n`);
		},
	});
	const mf = new Miniflare(config);
	const url = (await mf.ready).toString().replace(/\/$/, "");
	return migratedStack(url, secrets, state, () => mf.dispose());
}

/** The client of a started runtime, its D1 migrated; `dispose` stops the runtime and drops its state. */
async function migratedStack(url, secrets, state, stopRuntime) {
	const client = stackClient(url, secrets);
	await client.migrate().catch(async (err) => {
		await stopRuntime();
		throw err;
	});
	return {
		...client,
		async dispose() {
			await stopRuntime();
			rmSync(state, { recursive: true, force: true });
		},
	};
}

/**
 * The bench entry under `wrangler dev` (`unstable_startWorker`): wrangler's proxy in front of workerd. Like `npm start`,
 * without wrangler's local trace capture unless `localTraces` (scripts/lib/local-traces.mjs).
 */
export function startWranglerStack({ vars = {}, inMemory = false, localTraces = false } = {}) {
	return inStateDir(inMemory, (state) => startWrangler(state, vars, localTraces));
}

async function startWrangler(state, vars, localTraces) {
	const { unstable_startWorker } = await import("wrangler");
	// wrangler reads the switch from the environment as it builds the runtime's configuration.
	Object.assign(process.env, localTracesEnv(localTraces));
	const secrets = freshSecrets();
	const plain = Object.fromEntries(
		Object.entries({ ...secrets, ...GENEROUS_LIMITS, ...vars }).map(([k, v]) => [k, { type: "plain_text", value: v }]),
	);
	const worker = await unstable_startWorker({
		config: CONFIG,
		entrypoint: ENTRY,
		bindings: plain,
		dev: {
			server: { hostname: "127.0.0.1", port: 0 },
			inspector: false,
			watch: false,
			persist: path.join(state, "persist"),
			logLevel: "error",
		},
	});
	await worker.ready;
	const url = (await worker.url).toString().replace(/\/$/, "");
	return migratedStack(url, secrets, state, () => worker.dispose());
}
