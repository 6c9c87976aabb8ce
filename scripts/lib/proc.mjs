// Child process supervision: each child in its own process group, output prefixed line by line,
// and a stop that takes the whole group down (SIGTERM, then SIGKILL after a grace period).
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

const COLORS = { worker: 36, gpu: 35, migrate: 33 };

function prefixer(name, stream) {
	const color = process.stdout.isTTY && !process.env.NO_COLOR ? COLORS[name] : undefined;
	const tag = color ? `\x1b[${color}m[${name}]\x1b[0m` : `[${name}]`;
	return (line) => stream.write(`${tag} ${line}\n`);
}

/**
 * Starts `cmd args` in a new process group with stdin closed and each output line prefixed `[name]`.
 * `onLine(line, stream)` sees every line (stdout and stderr), e.g. to wait for a readiness message; with
 * `echo: false` the lines go to it alone, not to this process's own output.
 * @returns {{ name: string, child: import("node:child_process").ChildProcess, exited: Promise<{code: number|null, signal: string|null}>, stop: (graceMs?: number) => Promise<void> }}
 */
export function startProcess(name, cmd, args, { env, cwd, onLine, echo = true } = {}) {
	const child = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
	const outWrite = prefixer(name, process.stdout);
	const errWrite = prefixer(name, process.stderr);
	for (const [stream, write, which] of [
		[child.stdout, outWrite, "stdout"],
		[child.stderr, errWrite, "stderr"],
	]) {
		createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on("line", (line) => {
			if (echo) write(line);
			onLine?.(line, which);
		});
	}
	let done = false;
	const exited = new Promise((resolve) => {
		child.on("error", (err) => {
			const message = `could not start ${cmd}: ${err.message}`;
			if (echo) errWrite(message);
			onLine?.(message, "stderr");
			done = true;
			resolve({ code: 127, signal: null });
		});
		child.on("exit", (code, signal) => {
			done = true;
			resolve({ code, signal });
		});
	});

	const signalGroup = (sig) => {
		if (child.pid === undefined) return;
		try {
			process.kill(-child.pid, sig);
		} catch {
			// The group is already gone.
		}
	};

	async function stop(graceMs = 8000) {
		if (child.pid === undefined) return;
		signalGroup("SIGTERM");
		const timer = new Promise((r) => setTimeout(r, graceMs, "timeout"));
		if (!done && (await Promise.race([exited, timer])) === "timeout") signalGroup("SIGKILL");
		await exited;
		// Grandchildren (workerd, ffmpeg) share the group: make sure none outlives the leader.
		await waitGroupGone(child.pid, graceMs);
	}

	async function waitGroupGone(pgid, graceMs) {
		const until = Date.now() + graceMs;
		while (groupAlive(pgid)) {
			if (Date.now() > until) {
				signalGroup("SIGKILL");
				await new Promise((r) => setTimeout(r, 200));
				return;
			}
			await new Promise((r) => setTimeout(r, 100));
		}
	}

	return { name, child, exited, stop };
}

/** Whether any process of group `pgid` still exists. */
export function groupAlive(pgid) {
	try {
		process.kill(-pgid, 0);
		return true;
	} catch (err) {
		return err.code === "EPERM";
	}
}

/** Runs a command to completion with prefixed output; resolves with its exit code. */
export async function runToEnd(name, cmd, args, opts = {}) {
	const p = startProcess(name, cmd, args, opts);
	const { code, signal } = await p.exited;
	return code ?? (signal ? 128 : 1);
}
