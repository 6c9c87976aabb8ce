#!/usr/bin/env node
// `npm start`: the whole local stack. Writes .dev.vars, applies D1 migrations, starts the GPU worker in pod
// mode and `wrangler dev`, waits until both are healthy, registers the pod as the default backend, records where
// it runs for the other tools (scripts/lib/local-stack.mjs), and stops everything it started on Ctrl-C / SIGTERM.
// The processes' output goes to a log file; the terminal gets a short banner and what needs attention.
import { existsSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { ensureDevVars } from "./lib/dev-vars.mjs";
import { localStackFile, removeLocalStack, writeLocalStack } from "./lib/local-stack.mjs";
import { localTracesEnv } from "./lib/local-traces.mjs";
import { DEV_VARS, ROOT, requireInstalled, toolEnv, wranglerArgv } from "./lib/paths.mjs";
import { startProcess } from "./lib/proc.mjs";
import { createStackLog } from "./lib/stack-log.mjs";
import { portInUse, sleep, waitForUrl } from "./lib/wait.mjs";
import { copyVendorAssets } from "./lib/web-vendor.mjs";

const HELP = `Usage: npm start -- [options]

Starts the local stack: the API Worker (wrangler dev, local D1/R2/Durable Objects) and the GPU worker
in pod mode, registered as the default backend.

Options:
  --port N             Worker port (default 8787, env REELGATE_PORT)
  --pod-port N         GPU worker port (default 8000, env REELGATE_POD_PORT)
  --no-gpu-worker      Start only the Worker
  --persist-to DIR     Directory for wrangler's local state (default .wrangler/state)
  --inspector-port N   Port for the Worker's devtools inspector (default: wrangler's choice)
  --local-traces       Let wrangler capture every invocation's trace for its Local Explorer
                       (/cdn-cgi/explorer); off by default: it slows every request and Durable Object call
  --var NAME:VALUE     Override a [vars] setting of wrangler.toml (repeatable), e.g. ALLOW_LOOPBACK_WEBHOOKS:true
  --timeout S          Seconds to wait for both services to be healthy (default 180)
  --verbose            Show every process's output here (it always goes to the log file)
  -h, --help           This text

Once healthy, it records its URL and where the admin token lives in .reelgate/local.json, which
\`npm run keys\`, \`npm run reelgate\` and the clients read when REELGATE_URL is not set.

Environment: REELGATE_PORT, REELGATE_POD_PORT (ports), REELGATE_PYTHON (a Python that already has the
GPU worker's requirements, instead of gpu-worker/.venv), REELGATE_LOCAL_FILE (another place for the record).`;

const { values: opts } = parseArgs({
	options: {
		port: { type: "string" },
		"pod-port": { type: "string" },
		"no-gpu-worker": { type: "boolean", default: false },
		"persist-to": { type: "string" },
		"inspector-port": { type: "string" },
		"local-traces": { type: "boolean", default: false },
		var: { type: "string", multiple: true, default: [] },
		timeout: { type: "string" },
		verbose: { type: "boolean", default: false },
		help: { type: "boolean", short: "h", default: false },
	},
	strict: true,
});
if (opts.help) {
	console.log(HELP);
	process.exit(0);
}

function portOption(flag, envName, fallback) {
	const raw = opts[flag] ?? process.env[envName] ?? String(fallback);
	const n = Number(raw);
	if (!Number.isInteger(n) || n < 1 || n > 65535) fail(`--${flag} (or ${envName}) must be a port number, got ${raw}`);
	return n;
}

function fail(message) {
	console.error(`\nnpm start: ${message}`);
	process.exit(1);
}

const HOST = "127.0.0.1";
const port = portOption("port", "REELGATE_PORT", 8787);
const podPort = portOption("pod-port", "REELGATE_POD_PORT", 8000);
const withGpu = !opts["no-gpu-worker"];
const persistTo = opts["persist-to"] ? path.resolve(opts["persist-to"]) : undefined;
const timeoutS = Number(opts.timeout ?? 180);
if (!(timeoutS > 0)) fail(`--timeout must be a number of seconds, got ${opts.timeout}`);
const timeoutMs = timeoutS * 1000;
const workerUrl = `http://${HOST}:${port}`;
const podUrl = `http://${HOST}:${podPort}`;
const stackFile = localStackFile();
/** Made once the ports are known to be free: a second `npm start` must not truncate the first one's log. */
let log;
/** A path as a developer would type it from the repository root. */
const shown = (p) => (p.startsWith(`${ROOT}${path.sep}`) ? path.relative(ROOT, p) : p);

/** Starts a child whose output goes to the log (and to the terminal as the log decides). */
function startLogged(name, cmd, args, options) {
	return startProcess(name, cmd, args, {
		...options,
		echo: false,
		onLine: (line, stream) => log.line(name, line, stream),
	});
}

/** The reason a child failed, with its last lines: in quiet mode they were never shown. */
function failedWithTail(name, message) {
	const tail = opts.verbose ? [] : log.tail(name);
	const lines = tail.length ? `\n\nThe last lines of [${name}]:\n${tail.map((l) => `  ${l}`).join("\n")}` : "";
	return `${message}${lines}\n(The whole output: ${shown(log.file)})`;
}

/** @type {ReturnType<typeof startProcess>[]} */
const running = [];
let stopping = false;

async function stopAll(code) {
	if (stopping) return;
	stopping = true;
	removeLocalStack();
	if (running.length > 0) console.log("\nStopping the local stack…");
	await Promise.all(running.map((p) => p.stop()));
	if (running.length > 0) console.log("Stopped.");
	await log?.close();
	process.exit(code);
}

process.on("SIGINT", () => void stopAll(0));
process.on("SIGTERM", () => void stopAll(0));
process.on("SIGHUP", () => void stopAll(0));
process.on("uncaughtException", (err) => {
	console.error(err);
	void stopAll(1);
});

async function main() {
	requireInstalled();

	for (const [p, what, flag] of [
		[port, "the Worker", "--port"],
		...(withGpu ? [[podPort, "the GPU worker", "--pod-port"]] : []),
	]) {
		if (await portInUse(p, HOST)) {
			fail(`port ${p} (for ${what}) is already in use: is another \`npm start\` running? Stop it or pass ${flag}.`);
		}
	}

	log = createStackLog({ file: path.join(path.dirname(stackFile), "start.log"), verbose: opts.verbose });
	console.log(`Starting the local stack (output: ${shown(log.file)})…`);
	// 1. Secrets.
	const { vars, added, created } = ensureDevVars(DEV_VARS);
	if (created) console.log(`  wrote ${shown(DEV_VARS)} with random secrets (${added.join(", ")})`);
	else if (added.length > 0) console.log(`  added ${added.join(", ")} to ${shown(DEV_VARS)}`);
	const placeholders = Object.keys(vars).filter((k) => /^change-me/.test(vars[k]));
	if (placeholders.length > 0) {
		console.warn(`Warning: ${placeholders.join(", ")} in ${DEV_VARS} still hold the example's placeholder.`);
	}

	// 2. Local D1 schema. CI=true: wrangler skips its confirmation prompt.
	const persistArgs = persistTo ? ["--persist-to", persistTo] : [];
	const [node, migrateArgs] = wranglerArgv(["d1", "migrations", "apply", "DB", "--local", ...persistArgs]);
	const migrate = startLogged("migrate", node, migrateArgs, { cwd: ROOT, env: toolEnv({ CI: "true" }) });
	running.push(migrate);
	const { code: migrated } = await migrate.exited;
	running.splice(running.indexOf(migrate), 1);
	if (stopping) return;
	if (migrated !== 0)
		fail(
			failedWithTail(
				"migrate",
				`applying the D1 migrations failed (exit ${migrated}).\n` +
					`If the local database was made by an older schema, start afresh: rm -rf ${persistTo ?? ".wrangler/state"}`,
			),
		);
	console.log("  local database up to date");

	// 3. The GPU worker in pod mode.
	let gpu;
	if (withGpu) {
		// REELGATE_PYTHON: an interpreter that already has the GPU worker's requirements (skips the venv set-up).
		let python = process.env.REELGATE_PYTHON;
		try {
			if (!python) {
				const envModule = path.join(ROOT, "scripts", "python-env.mjs");
				if (!existsSync(envModule)) throw new Error("scripts/python-env.mjs is missing");
				const { ensurePythonEnv } = await import(envModule);
				python = await ensurePythonEnv();
			}
		} catch (err) {
			fail(
				`setting up the GPU worker's Python environment failed: ${err.message}\n` +
					"It needs python3 ≥ 3.11 with venv (Debian: apt-get install python3 python3-venv). " +
					"Or start without it: npm start -- --no-gpu-worker",
			);
		}
		if (stopping) return;
		gpu = startLogged("gpu", python, ["-m", "gpu_worker"], {
			cwd: path.join(ROOT, "gpu-worker"),
			env: {
				...process.env,
				DEPLOYMENT_MODE: "pod",
				POD_HOST: HOST,
				POD_PORT: String(podPort),
				POD_API_TOKEN: vars.POD_API_TOKEN,
				PYTHONUNBUFFERED: "1",
			},
		});
		running.push(gpu);
	}

	// 4. The Worker, with the third-party files it serves (the API reference renderer) in place.
	try {
		copyVendorAssets();
	} catch (err) {
		fail(err.message);
	}
	const inspector = opts["inspector-port"] ? ["--inspector-port", opts["inspector-port"]] : [];
	const [wnode, devArgs] = wranglerArgv([
		"dev",
		"--ip",
		HOST,
		"--port",
		String(port),
		"--var",
		`PUBLIC_URL:${workerUrl}`,
		...opts.var.flatMap((v) => ["--var", v]),
		"--show-interactive-dev-session=false",
		...persistArgs,
		...inspector,
	]);
	const worker = startLogged("worker", wnode, devArgs, {
		cwd: ROOT,
		// No network here for the `Request.cf` sample: use the placeholder without a failed fetch in the log.
		env: toolEnv({
			WRANGLER_SEND_METRICS: "false",
			FORCE_COLOR: "0",
			CLOUDFLARE_CF_FETCH_ENABLED: "false",
			...localTracesEnv(opts["local-traces"]),
		}),
	});
	running.push(worker);

	// 5. Both healthy, or a clear reason why not.
	console.log(`  waiting for the API${gpu ? " and the GPU worker" : ""} to answer…`);
	const exitedReason = (p) => {
		let reason;
		p.exited.then(({ code, signal }) => {
			reason = failedWithTail(
				p.name,
				`the [${p.name}] process exited (${signal ?? `code ${code}`}) before it was healthy`,
			);
		});
		return () => reason;
	};
	try {
		await Promise.all([
			waitForUrl(`${workerUrl}/healthz`, { timeoutMs, abort: exitedReason(worker) }),
			gpu &&
				waitForUrl(`${podUrl}/health`, {
					timeoutMs,
					headers: { authorization: `Bearer ${vars.POD_API_TOKEN}` },
					abort: exitedReason(gpu),
				}),
		]);
	} catch (err) {
		if (stopping) return;
		const detail = err.message.includes(log.file) ? "" : `\n(The whole output: ${shown(log.file)})`;
		console.error(`\nnpm start: ${err.message}${detail}`);
		return stopAll(1);
	}
	if (stopping) return;

	// 6. The pod is the default backend.
	let backendNote = "";
	if (gpu) backendNote = await registerPodBackend(vars);

	// 7. Watch: a child that dies takes the stack down, loudly.
	for (const p of running) {
		p.exited.then(({ code, signal }) => {
			if (stopping) return;
			console.error(
				`\nnpm start: ${failedWithTail(p.name, `the [${p.name}] process exited (${signal ?? `code ${code}`})`)}\nStopping the rest.`,
			);
			void stopAll(1);
		});
	}

	// 8. Where the stack runs, for the keys script, the CLI and the clients.
	writeLocalStack(
		{
			url: workerUrl,
			admin_token_file: DEV_VARS,
			log_file: log.file,
			...(gpu ? { gpu_worker_url: podUrl } : {}),
			pid: process.pid,
			started_at: new Date().toISOString(),
		},
		stackFile,
	);
	log.stackIsUp();
	console.log(banner(backendNote, Boolean(gpu)).join("\n"));
}

/** What a developer needs once the stack is up: where things are and the next command. */
function banner(backendNote, withGpu) {
	return [
		"",
		"Reelgate is ready.",
		`  Demo page      ${workerUrl}/`,
		`  API reference  ${workerUrl}/docs`,
		withGpu
			? `  GPU worker     ${podUrl}  (backend "local", model "preview")`
			: "  GPU worker     not started (--no-gpu-worker)",
		`  Admin token    ADMIN_TOKEN in ${shown(DEV_VARS)}`,
		`  Found by       npm run keys, npm run reelgate and the clients, through ${shown(stackFile)}`,
		`  Logs           ${shown(log.file)}${opts.verbose ? "" : " (warnings and errors also show here)"}`,
		...(backendNote ? ["", backendNote] : []),
		"",
		"Next: npm run keys -- create --name me   (an API key for the demo page, or export it as REELGATE_API_KEY)",
		"Ctrl-C stops everything.",
		"",
	];
}

/** PUT /v1/admin/backends/local; retried while the route answers 404 or errors, then only a warning. */
async function registerPodBackend(vars) {
	const body = {
		kind: "pod",
		priority: 100,
		models: ["preview"],
		max_concurrency: 1,
		config: { url: podUrl, token: vars.POD_API_TOKEN },
	};
	let last = "";
	for (let attempt = 1; attempt <= 5 && !stopping; attempt++) {
		try {
			const res = await fetch(`${workerUrl}/v1/admin/backends/local`, {
				method: "PUT",
				headers: { authorization: `Bearer ${vars.ADMIN_TOKEN}`, "content-type": "application/json" },
				body: JSON.stringify(body),
				signal: AbortSignal.timeout(10_000),
			});
			const text = await res.text();
			if (res.ok) return "";
			last = `HTTP ${res.status}: ${text.slice(0, 300)}`;
			// A 4xx other than 404 will not change on retry.
			if (res.status >= 400 && res.status < 500 && res.status !== 404 && res.status !== 429) break;
		} catch (err) {
			last = err.message;
		}
		await sleep(1000 * attempt);
	}
	return `Warning: could not register the GPU worker as backend "local" (${last}); jobs will find no backend.`;
}

main().catch((err) => {
	console.error(`\nnpm start: ${err.stack ?? err}`);
	void stopAll(1);
});
