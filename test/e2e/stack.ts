// Starts the real local stack (scripts/start.mjs) on free ports with its own wrangler state, and stops it.
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { readDevVars } from "../../scripts/lib/dev-vars.mjs";
import { DEV_VARS, nodeBinary, ROOT, toolEnv } from "../../scripts/lib/paths.mjs";
import { freePort, portInUse } from "../../scripts/lib/wait.mjs";

export interface Stack {
	url: string;
	podUrl: string;
	/** Where this stack records its location (REELGATE_LOCAL_FILE for the tools run against it). */
	localFile: string;
	ports: number[];
	adminToken: string;
	output: () => string;
	/** SIGTERM to start.mjs, as Ctrl-C would; resolves with its exit code. */
	stop: () => Promise<number | null>;
	/** Processes of this stack still alive (found by a marker in their environment). */
	survivors: () => number[];
	/** Last resort: SIGKILL whatever is left. */
	kill: () => void;
	cleanup: () => void;
}

/** Pids of processes whose environment carries `marker`. Linux only (/proc). */
function pidsWithMarker(marker: string): number[] {
	const pids: number[] = [];
	let entries: string[] = [];
	try {
		entries = readdirSync("/proc");
	} catch {
		return pids;
	}
	for (const e of entries) {
		if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
		try {
			if (readFileSync(`/proc/${e}/environ`, "latin1").includes(marker)) pids.push(Number(e));
		} catch {
			// Gone, or not ours to read.
		}
	}
	return pids;
}

export interface StackOptions {
	timeoutMs?: number;
	/** The Worker's port; default a free one. A restart passes the previous stack's port. */
	port?: number;
	/**
	 * Where wrangler keeps D1, R2 and Durable Object state. Given: kept by `cleanup` (the caller owns it), so a
	 * restarted stack finds the same state. Default: a temporary directory that `cleanup` removes.
	 */
	persistTo?: string;
	/** Start the Python GPU worker in pod mode (default true); false for tests that bring their own backends. */
	gpuWorker?: boolean;
	/** Extra `wrangler dev --var NAME:VALUE` settings, e.g. `{ ALLOW_LOOPBACK_WEBHOOKS: "true" }`. */
	vars?: Record<string, string>;
	/** Only the banner and what needs attention on the output, as `npm start` prints by default; else every line. */
	quiet?: boolean;
}

export async function startStack({
	timeoutMs = 400_000,
	port: fixedPort,
	persistTo: fixedPersistTo,
	gpuWorker = true,
	vars = {},
	quiet = false,
}: StackOptions = {}): Promise<Stack> {
	const [port, podPort, inspectorPort] = [fixedPort ?? (await freePort()), await freePort(), await freePort()];
	const persistTo = fixedPersistTo ?? mkdtempSync(path.join(tmpdir(), "reelgate-e2e-"));
	// Its own record and log: a developer's `npm start` in the same checkout keeps .reelgate/ to itself.
	const recordDir = mkdtempSync(path.join(tmpdir(), "reelgate-stack-"));
	const localFile = path.join(recordDir, "local.json");
	const marker = `REELGATE_E2E_RUN=${randomUUID()}`;
	const [mk, mv] = marker.split("=") as [string, string];
	let out = "";
	const child: ChildProcess = spawn(
		nodeBinary(),
		[
			path.join(ROOT, "scripts", "start.mjs"),
			"--port",
			String(port),
			"--pod-port",
			String(podPort),
			"--inspector-port",
			String(inspectorPort),
			"--persist-to",
			persistTo,
			"--timeout",
			"300",
			...(gpuWorker ? [] : ["--no-gpu-worker"]),
			...(quiet ? [] : ["--verbose"]),
			...Object.entries(vars).flatMap(([k, v]) => ["--var", `${k}:${v}`]),
		],
		// Not detached: a Ctrl-C on the test run reaches start.mjs too, which then stops its own children.
		{
			cwd: ROOT,
			env: toolEnv({ [mk]: mv, NO_COLOR: "1", REELGATE_LOCAL_FILE: localFile }),
			stdio: ["ignore", "pipe", "pipe"],
		},
	);
	const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
	const ready = new Promise<void>((resolve, reject) => {
		const timer = setTimeout(
			() => reject(new Error(`the stack was not ready within ${timeoutMs / 1000} s`)),
			timeoutMs,
		);
		for (const s of [child.stdout, child.stderr]) {
			if (!s) continue;
			createInterface({ input: s }).on("line", (line) => {
				out += `${line}\n`;
				if (process.env.REELGATE_E2E_VERBOSE) console.log(line);
				if (line.includes("Reelgate is ready.")) {
					clearTimeout(timer);
					resolve();
				}
			});
		}
		void exited.then((code) => {
			clearTimeout(timer);
			reject(new Error(`scripts/start.mjs exited (${code}) before it was ready:\n${out.slice(-4000)}`));
		});
	});

	const kill = () => {
		for (const pid of pidsWithMarker(marker)) {
			try {
				process.kill(pid, "SIGKILL");
			} catch {}
		}
	};
	// If the test process goes away without afterAll (a crash, a forced exit), take the stack with it.
	process.once("exit", kill);
	const stack: Stack = {
		url: `http://127.0.0.1:${port}`,
		podUrl: `http://127.0.0.1:${podPort}`,
		localFile,
		ports: gpuWorker ? [port, podPort] : [port],
		adminToken: "",
		output: () => out,
		stop: async () => {
			if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
			return exited;
		},
		survivors: () => pidsWithMarker(marker),
		kill,
		cleanup: () => {
			kill();
			if (!fixedPersistTo) rmSync(persistTo, { recursive: true, force: true });
			rmSync(recordDir, { recursive: true, force: true });
		},
	};
	try {
		await ready;
	} catch (err) {
		stack.cleanup();
		throw err;
	}
	stack.adminToken = readDevVars(DEV_VARS).ADMIN_TOKEN ?? "";
	return stack;
}

export async function portsFree(ports: number[]): Promise<boolean> {
	for (const p of ports) if (await portInUse(p)) return false;
	return true;
}
