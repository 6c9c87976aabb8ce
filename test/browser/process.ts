// Runs a command to its end, collecting what it printed: how the browser suite drives the CLI, the clients and the
// README's walk-through.
import { spawn } from "node:child_process";

export interface Finished {
	code: number | null;
	stdout: string;
	stderr: string;
}

export function runToEnd(
	command: string,
	args: string[],
	options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Finished> {
	return new Promise((resolve) => {
		const child = spawn(command, args, options);
		let stdout = "";
		let stderr = "";
		child.stdout.on("data", (c) => {
			stdout += c;
		});
		child.stderr.on("data", (c) => {
			stderr += c;
		});
		child.on("close", (code) => resolve({ code, stdout, stderr }));
	});
}

/** This process's environment without the settings that would point a tool at another API than the suite's. */
export function environmentWithoutApi(): NodeJS.ProcessEnv {
	const { REELGATE_URL: _url, REELGATE_PORT: _port, REELGATE_API_KEY: _key, ...env } = process.env;
	return env;
}
