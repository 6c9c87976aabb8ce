// Runs the schemathesis CLI against a live API and reads its NDJSON event report into failures and a tally.
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";

export interface FuzzFailure {
	run: string;
	operation: string;
	check: string;
	/** Schemathesis' failure code and title, e.g. `ST103 Undocumented status code`. */
	title: string;
	message: string;
	status: number | undefined;
	curl: string;
}

export interface FuzzReport {
	run: string;
	exitCode: number | null;
	seconds: number;
	operations: Set<string>;
	requests: number;
	cases: number;
	failures: FuzzFailure[];
	/** Errors of the run itself (schema loading, generation, network), not findings about responses. */
	errors: string[];
	output: string;
}

export interface FuzzRunOptions {
	run: string;
	/** The python of a venv that has schemathesis. */
	python: string;
	schemaUrl: string;
	configFile: string;
	reportDir: string;
	args: string[];
	env: Record<string, string>;
	/** The secrets the output must show as placeholders (in the curl lines, as `$NAME`). */
	secrets: Record<string, string>;
}

const shellQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

interface Interaction {
	request: { method: string; uri: string; headers: Record<string, string[]>; body?: { $base64?: string } };
	response?: { status_code: number };
}
interface CheckResult {
	name: string;
	status: string;
	failure_info?: { failure: { code?: string; title: string; message: string; operation: string } };
}
interface Recorder {
	label: string;
	checks: Record<string, CheckResult[]>;
	interactions: Record<string, Interaction>;
}

/** A curl line that replays one request; an Authorization schemathesis filtered becomes the given variable. */
export function curlOf(interaction: Interaction, authVar: string): string {
	const { method, uri, headers, body } = interaction.request;
	const parts = ["curl", "-X", method];
	for (const [name, values] of Object.entries(headers)) {
		for (const value of values) {
			// Schemathesis masks the credentials it was given; the line names the variable that holds them.
			const masked = name.toLowerCase() === "authorization" && value === "[Filtered]";
			parts.push("-H", masked ? `"${name}: Bearer $${authVar}"` : shellQuote(`${name}: ${value}`));
		}
	}
	if (body?.$base64 !== undefined) {
		const bytes = Buffer.from(body.$base64, "base64");
		const text = bytes.toString("utf8");
		const printable = Buffer.from(text, "utf8").equals(bytes) && !text.includes("\0");
		parts.push("--data-binary", printable ? shellQuote(text) : `@<(echo ${body.$base64} | base64 -d)`);
	}
	parts.push(shellQuote(uri));
	return parts.join(" ");
}

/** Reads one NDJSON report (one event object per line, keyed by the event's name). */
export function readReport(
	run: string,
	ndjson: string,
	authVarFor: (operation: string) => string,
): Omit<FuzzReport, "exitCode" | "seconds" | "output"> {
	const operations = new Set<string>();
	const failures: FuzzFailure[] = [];
	const errors: string[] = [];
	const seen = new Set<string>();
	let requests = 0;
	let cases = 0;
	for (const line of ndjson.split("\n")) {
		if (!line.trim()) continue;
		const event = JSON.parse(line) as Record<string, Record<string, unknown>>;
		const [name, body] = Object.entries(event)[0] ?? [];
		if (!name || !body) continue;
		if (name === "NonFatalError" || name === "FatalError") {
			const what = body.label ?? "the run";
			const value = body.value ?? body.exception ?? body.info;
			errors.push(`${what}: ${typeof value === "string" ? value : JSON.stringify(value)}`);
			continue;
		}
		if (name !== "ScenarioFinished") continue;
		const recorder = body.recorder as unknown as Recorder | undefined;
		if (!recorder) continue;
		// The stateful phase records its scenarios under one label of its own, not an operation's.
		if (/^[A-Z]+ \//.test(recorder.label)) operations.add(recorder.label);
		requests += Object.keys(recorder.interactions ?? {}).length;
		cases += Object.keys(recorder.checks ?? {}).length;
		for (const [caseId, checks] of Object.entries(recorder.checks ?? {})) {
			for (const check of checks) {
				if (check.status !== "failure" || !check.failure_info) continue;
				const { failure } = check.failure_info;
				const interaction = recorder.interactions?.[caseId];
				const status = interaction?.response?.status_code;
				const message = failure.message.trim();
				// One entry per operation, check, status and message: shrinking and later phases repeat findings.
				const key = [recorder.label, check.name, status, failure.title, message].join("\u0000");
				if (seen.has(key)) continue;
				seen.add(key);
				failures.push({
					run,
					operation: failure.operation || recorder.label,
					check: check.name,
					title: [failure.code, failure.title].filter(Boolean).join(" "),
					message,
					status,
					curl: interaction ? curlOf(interaction, authVarFor(recorder.label)) : "(no request recorded)",
				});
			}
		}
	}
	return { run, operations, requests, cases, failures, errors };
}

export function formatFailure(f: FuzzFailure): string {
	const status = f.status === undefined ? "no response" : String(f.status);
	const message = f.message.split("\n").slice(0, 6).join("\n    ");
	return `[${f.run}] ${f.operation} → ${status}: ${f.title} (${f.check})\n    ${message}\n    ${f.curl}`;
}

export async function runSchemathesis(opts: FuzzRunOptions): Promise<FuzzReport> {
	const ndjsonPath = path.join(opts.reportDir, "events.ndjson");
	const args = [
		"-m",
		"schemathesis.cli",
		"--config-file",
		opts.configFile,
		"run",
		opts.schemaUrl,
		"--report",
		"ndjson",
		"--report-dir",
		opts.reportDir,
		"--report-ndjson-path",
		ndjsonPath,
		"--no-color",
		...opts.args,
	];
	const started = Date.now();
	let output = "";
	const exitCode = await new Promise<number | null>((resolve, reject) => {
		const child = spawn(opts.python, args, {
			cwd: opts.reportDir,
			env: { ...process.env, ...opts.env, NO_COLOR: "1" },
			stdio: ["ignore", "pipe", "pipe"],
		});
		const keep = (chunk: Buffer) => {
			output += chunk.toString("utf8");
			if (output.length > 400_000) output = output.slice(-200_000);
		};
		child.stdout.on("data", keep);
		child.stderr.on("data", keep);
		child.on("error", reject);
		child.on("close", (code) => resolve(code));
	});
	const seconds = (Date.now() - started) / 1000;
	if (!existsSync(ndjsonPath)) {
		const files = readdirSync(opts.reportDir).join(", ");
		throw new Error(`schemathesis (${opts.run}) exited ${exitCode} without a report (found: ${files}):\n${output}`);
	}
	const report = readReport(opts.run, readFileSync(ndjsonPath, "utf8"), (operation) =>
		operation.includes("/v1/admin/") ? "REELGATE_ADMIN_TOKEN" : "REELGATE_API_KEY",
	);
	for (const [name, value] of Object.entries(opts.secrets)) {
		if (value) output = output.replaceAll(value, `$${name}`);
	}
	return { ...report, exitCode, seconds, output };
}
