#!/usr/bin/env node
// `npm run reelgate -- <command>`: make a video from files, see the models, follow and manage jobs, create API keys.
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { readDevVars } from "../scripts/lib/dev-vars.mjs";
import { resolveApiUrl } from "../scripts/lib/local-stack.mjs";
import { DEV_VARS } from "../scripts/lib/paths.mjs";
import { contentTypeOfName } from "./files.ts";
import { parameterSchemas } from "./model-check.ts";
import {
	type CatalogModel,
	type Job,
	JobFailedError,
	type JobStatus,
	type Model,
	Reelgate,
	ReelgateConnectionError,
	ReelgateError,
	type RunInput,
} from "./node.ts";
import { ProgressBar } from "./progress-bar.ts";

const USAGE = `Usage: npm run reelgate -- <command> [options]

Make a video:
  run MODEL --image FILE [--audio FILE] [--prompt TEXT] [--resolution WxH] [--duration S] [--fps N]
            [--seed N] [--steps N] [--param NAME=VALUE]… [--out FILE.mp4]
  generate --image FILE [--model MODEL] …            the same, the model as an option (default preview)
      FILE is a local file, an upload id (upl_…) or an https URL. The input is checked against the model's
      parameters (npm run reelgate -- models show MODEL) before anything is uploaded. The video is saved to
      --out (default JOB_ID.mp4); the job's JSON goes to stdout, progress to stderr.

Models:
  models [--json]                   the models, whether each is available now (and why not)
  models show MODEL [--json]        a model's inputs and parameters, with their ranges and defaults

Jobs:
  jobs list [--status STATUS] [--limit N] [--json]
  jobs show JOB_ID                  the job's JSON
  jobs watch JOB_ID                 follow it to its end
  jobs cancel JOB_ID
  jobs download JOB_ID [--out FILE.mp4]

Other:
  keys create --name NAME [--account ACCOUNT] [--admin-token TOKEN]
  url                               the API this CLI talks to, and why

Options for every command:
  --url URL          the API (default: REELGATE_URL, else the running \`npm start\`, else http://127.0.0.1:8787)
  --api-key KEY      API key (default: REELGATE_API_KEY; \`npm run keys -- create --name me\` makes one)
  -h, --help         this text

Exit status:
  0    done
  1    the job failed or was canceled (its error is printed)
  2    a usage error or an invalid input, each field named: an unknown flag, a missing file, a value outside
       the model's range (found before anything is sent, or answered 400 by the API)
  3    the API refused the request otherwise: the key (401, 403), not found (404), a conflict (409), 413, 422, 429
  4    the API could not be reached, failed (5xx), or no enabled backend serves the model (422 model_unavailable)
  130  interrupted with Ctrl-C; a started job goes on (npm run reelgate -- jobs watch JOB_ID)
`;

const EXIT = { ok: 0, jobFailed: 1, usage: 2, refused: 3, unavailable: 4, interrupted: 130 } as const;

/** A mistake in the command line or its files, found before anything is sent. */
class UsageError extends Error {}

/** Options per command: any other is a usage error, not silently ignored. */
const COMMON = ["url", "api-key", "help"];
const RUN_OPTIONS = [
	"image",
	"audio",
	"prompt",
	"negative-prompt",
	"resolution",
	"duration",
	"fps",
	"seed",
	"steps",
	"param",
	"out",
];
const ALLOWED: Record<string, string[]> = {
	run: RUN_OPTIONS,
	generate: [...RUN_OPTIONS, "model"],
	models: ["json"],
	"models show": ["json"],
	"jobs list": ["status", "limit", "json"],
	"jobs show": [],
	"jobs watch": [],
	"jobs cancel": [],
	"jobs download": ["out"],
	"keys create": ["name", "account", "admin-token"],
	url: [],
};

/** Flags whose value is a parameter of `input` (the flag's name is the parameter's, but for these). */
const PARAM_FLAGS: Record<string, string> = {
	prompt: "prompt",
	"negative-prompt": "negative_prompt",
	resolution: "resolution",
	duration: "duration_s",
	fps: "fps",
	seed: "seed",
	steps: "steps",
};

function parse(argv: string[]) {
	try {
		return parseArgs({
			args: argv,
			allowPositionals: true,
			options: {
				url: { type: "string" },
				"api-key": { type: "string" },
				"admin-token": { type: "string" },
				image: { type: "string" },
				audio: { type: "string" },
				model: { type: "string" },
				prompt: { type: "string" },
				"negative-prompt": { type: "string" },
				resolution: { type: "string" },
				duration: { type: "string" },
				fps: { type: "string" },
				seed: { type: "string" },
				steps: { type: "string" },
				param: { type: "string", multiple: true },
				out: { type: "string" },
				status: { type: "string" },
				limit: { type: "string" },
				json: { type: "boolean" },
				name: { type: "string" },
				account: { type: "string" },
				help: { type: "boolean", short: "h" },
			},
		});
	} catch (err) {
		// node:util's message names the flag, then explains `--` at length: the first sentence is enough.
		const message = err instanceof Error ? err.message : String(err);
		throw new UsageError(`${message.split(". ")[0]?.replace(/'/g, "") ?? message}.`);
	}
}

const { values: opts, positionals } = (() => {
	try {
		return parse(process.argv.slice(2));
	} catch (err) {
		process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
		process.exit(EXIT.usage);
	}
})();

function client(): Reelgate {
	const apiKey = opts["api-key"] ?? process.env.REELGATE_API_KEY;
	if (!apiKey) {
		throw new UsageError(
			"No API key: pass --api-key or set REELGATE_API_KEY (`npm run keys -- create --name me` makes one).",
		);
	}
	return new Reelgate({ baseUrl: opts.url, apiKey });
}

/** The command's name (`jobs list`), after checking it takes every option given. */
function commandOf(command: string, sub: string | undefined): string {
	const name = ALLOWED[`${command} ${sub}`] ? `${command} ${sub}` : command;
	const allowed = ALLOWED[name];
	if (!allowed) {
		const known = command === "jobs" || command === "keys" || command === "models";
		throw new UsageError(known ? `Unknown ${command} command "${sub ?? ""}".` : `Unknown command "${command}".`);
	}
	for (const given of Object.keys(opts)) {
		if (!allowed.includes(given) && !COMMON.includes(given)) {
			throw new UsageError(`--${given} is not an option of \`${name}\`.`);
		}
	}
	return name;
}

function numberValue(flag: string, raw: string): number {
	const n = Number(raw);
	if (raw.trim() === "" || !Number.isFinite(n)) throw new UsageError(`--${flag} must be a number, not "${raw}".`);
	return n;
}

/** A flag's text as the type the model's schema gives the parameter (numbers for number and integer). */
function typedValue(model: CatalogModel | null, name: string, flag: string, raw: string): unknown {
	const schema = model ? parameterSchemas(model)[name] : undefined;
	const type = schema?.type ?? (["duration_s", "fps", "seed", "steps"].includes(name) ? "number" : "string");
	if (type === "number" || type === "integer") return numberValue(flag, raw);
	if (type === "boolean") {
		if (raw !== "true" && raw !== "false") throw new UsageError(`--${flag} must be true or false, not "${raw}".`);
		return raw === "true";
	}
	return raw;
}

/** A file flag's value: a local file (which must exist and be of a known type), an upload id, or a URL. */
function fileValue(flag: string, value: string): string {
	if (/^upl_[a-z0-9]+$/.test(value) || /^https?:\/\//i.test(value)) return value;
	if (!existsSync(value)) throw new UsageError(`--${flag} ${value}: no such file.`);
	if (!contentTypeOfName(value)) {
		throw new UsageError(`--${flag} ${value}: unknown file type; use .png .jpg .jpeg .webp .wav .mp3 .flac or .ogg.`);
	}
	return value;
}

/** `input` of the job from the flags, typed by the model's schema (when the catalog has the model). */
function inputFromFlags(model: CatalogModel | null): RunInput {
	if (!opts.image) throw new UsageError("--image FILE is required.");
	const input: Record<string, unknown> = { image: fileValue("image", opts.image) };
	if (opts.audio) input.audio = fileValue("audio", opts.audio);
	for (const [flag, name] of Object.entries(PARAM_FLAGS)) {
		const raw = opts[flag as keyof typeof opts];
		if (typeof raw === "string") input[name] = typedValue(model, name, flag, raw);
	}
	for (const pair of opts.param ?? []) {
		const eq = pair.indexOf("=");
		if (eq <= 0) throw new UsageError(`--param takes NAME=VALUE, not "${pair}".`);
		const name = pair.slice(0, eq);
		input[name] = typedValue(model, name, `param ${name}`, pair.slice(eq + 1));
	}
	return input as RunInput;
}

async function runCommand(modelId: string | undefined): Promise<number> {
	if (!modelId) throw new UsageError("Which model? npm run reelgate -- run MODEL --image FILE (see `models`).");
	const api = client();
	const model = await api.getModel(modelId).catch(() => null);
	const input = inputFromFlags(model);
	// Everything the catalog can tell is checked before the first byte is uploaded.
	await api.checkRunnable(modelId, input);
	const bar = new ProgressBar();
	const interrupt = new AbortController();
	let jobId = "";
	process.once("SIGINT", () => interrupt.abort(new Interrupted(jobId)));
	const job = await api
		.run(modelId as Model, input, {
			signal: interrupt.signal,
			onProgress: (p) => {
				if (p.stage === "upload") {
					bar.update(`upload ${p.filename}`.slice(0, 30), p.total ? (p.sent / p.total) * 100 : 100);
					return;
				}
				if (!jobId) {
					jobId = p.job.id;
					bar.done();
					process.stderr.write(`job ${p.job.id} (${p.job.model})\n`);
				}
				bar.update(p.job.status, p.job.progress.percent, p.job.progress.stage ?? "");
			},
		})
		.finally(() => bar.done());
	const out = opts.out ?? `${job.id}.mp4`;
	const bytes = await job.download(out);
	const video = job.output?.video;
	process.stderr.write(`saved ${out} (${bytes} bytes${video?.width ? `, ${video.width}x${video.height}` : ""})\n`);
	console.log(JSON.stringify(job, null, 2));
	return EXIT.ok;
}

/** Ctrl-C while following a job: the job goes on. */
class Interrupted extends Error {
	constructor(jobId: string) {
		super(
			jobId
				? `Stopped watching; the job ${jobId} goes on (npm run reelgate -- jobs watch ${jobId}).`
				: "Stopped before a job was started.",
		);
	}
}

/** Rows as aligned columns, the header first. */
function table(header: string[], rows: string[][]): string {
	const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
	const line = (cells: string[]) =>
		cells
			.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
			.join("  ")
			.trimEnd();
	return [line(header), ...rows.map(line)].join("\n");
}

function secondsBetween(from?: string, to?: string): string {
	if (!from || !to) return "";
	const s = (Date.parse(to) - Date.parse(from)) / 1000;
	return Number.isFinite(s) ? `${s.toFixed(1)} s` : "";
}

async function models(sub: string | undefined, id: string | undefined): Promise<number> {
	const api = client();
	if (sub === "show") {
		if (!id) throw new UsageError("models show needs a model id (see `npm run reelgate -- models`).");
		const model = await api.getModel(id);
		if (opts.json) {
			console.log(JSON.stringify(model, null, 2));
			return EXIT.ok;
		}
		const lines = [`${model.id} (version ${model.version}): ${model.title}`, model.description, ""];
		lines.push(model.available ? "Available now." : `Not available now: ${model.unavailable_reason ?? "no backend"}.`);
		lines.push("", "Inputs:");
		for (const [name, spec] of Object.entries(model.inputs)) {
			lines.push(`  --${name} FILE  ${spec?.required ? "required" : "optional"}: ${spec?.description ?? ""}`);
		}
		lines.push("", "Parameters:");
		const flagOf = Object.fromEntries(Object.entries(PARAM_FLAGS).map(([flag, name]) => [name, flag]));
		for (const [name, schema] of Object.entries(parameterSchemas(model))) {
			const s = schema as Record<string, unknown>;
			const range = s.minimum !== undefined ? ` ${s.minimum}–${s.maximum}` : s.enum ? ` ${JSON.stringify(s.enum)}` : "";
			const def = s.default !== undefined && s.default !== "" ? `, default ${JSON.stringify(s.default)}` : "";
			const flag = flagOf[name] ? `--${flagOf[name]}` : `--param ${name}=…`;
			lines.push(`  ${flag.padEnd(22)} ${s.type ?? "value"}${range}${def}: ${String(s.description ?? "")}`);
		}
		if (model.constraints.length) lines.push("", "Also:", ...model.constraints.map((c) => `  ${c}`));
		console.log(lines.join("\n"));
		return EXIT.ok;
	}
	if (sub !== undefined) throw new UsageError(`Unknown models command "${sub}"; use show.`);
	const all = await api.listModels();
	if (opts.json) {
		console.log(JSON.stringify({ data: all }, null, 2));
		return EXIT.ok;
	}
	const rows = all.map((m) => [
		m.id,
		m.available ? "yes" : `no: ${m.unavailable_reason ?? "no backend serves it"}`,
		Object.entries(m.inputs)
			.map(([k, v]) => (v?.required ? k : `[${k}]`))
			.join(" "),
		m.title,
	]);
	console.log(table(["MODEL", "AVAILABLE", "INPUTS", "TITLE"], rows));
	return EXIT.ok;
}

async function watch(api: Reelgate, id: string): Promise<number> {
	const bar = new ProgressBar();
	const interrupt = new AbortController();
	process.once("SIGINT", () => interrupt.abort(new Interrupted(id)));
	const job = await api
		.waitForJob(id, {
			signal: interrupt.signal,
			onEvent: ({ job: j }) => bar.update(j.status, j.progress.percent, j.progress.stage ?? ""),
		})
		.finally(() => bar.done());
	console.log(JSON.stringify(job, null, 2));
	if (job.status !== "succeeded") throw new JobFailedError(job);
	return EXIT.ok;
}

async function jobs(sub: string | undefined, id: string | undefined): Promise<number> {
	const api = client();
	if (sub === "list") {
		const status = opts.status as JobStatus | undefined;
		const page = await api.listJobs({ status, limit: opts.limit ? numberValue("limit", opts.limit) : undefined });
		if (opts.json) {
			console.log(JSON.stringify(page, null, 2));
			return EXIT.ok;
		}
		const rows = page.data.map((j: Job) => [
			j.id,
			j.status,
			j.model,
			j.created_at.replace("T", " ").replace(/\.\d+Z$|Z$/, ""),
			secondsBetween(j.created_at, j.completed_at),
			j.cost ? `$${j.cost.usd.toFixed(4)}` : "",
		]);
		console.log(rows.length ? table(["ID", "STATUS", "MODEL", "CREATED (UTC)", "TOOK", "COST"], rows) : "No jobs.");
		if (page.next_cursor) process.stderr.write("(more: --limit N, or --json for the cursor)\n");
		return EXIT.ok;
	}
	if (!id) throw new UsageError(`jobs ${sub} needs a job id.`);
	switch (sub) {
		case "show":
			console.log(JSON.stringify(await api.getJob(id), null, 2));
			return EXIT.ok;
		case "watch":
			return watch(api, id);
		case "cancel":
			console.log(JSON.stringify(await api.cancelJob(id), null, 2));
			return EXIT.ok;
		case "download": {
			const out = opts.out ?? `${id}.mp4`;
			const bytes = await api.saveVideo(id, out);
			process.stderr.write(`saved ${out} (${bytes} bytes)\n`);
			return EXIT.ok;
		}
	}
	throw new UsageError(`Unknown jobs command "${sub ?? ""}".`);
}

async function keys(): Promise<number> {
	if (!opts.name) throw new UsageError("keys create needs --name NAME.");
	const target = resolveApiUrl(opts.url);
	const devVars = target.stack?.admin_token_file ?? DEV_VARS;
	const token = opts["admin-token"] ?? process.env.ADMIN_TOKEN ?? readDevVars(devVars).ADMIN_TOKEN;
	if (!token) {
		throw new UsageError(
			"No admin token: pass --admin-token, set ADMIN_TOKEN, or run `npm start` once to write .dev.vars.",
		);
	}
	const admin = new Reelgate({ baseUrl: target.url, apiKey: token });
	const created = await admin.request("POST", "/v1/admin/keys", {
		name: opts.name,
		...(opts.account ? { account: opts.account } : {}),
	});
	console.log(JSON.stringify(created, null, 2));
	return EXIT.ok;
}

async function main(): Promise<number> {
	const [command, sub, arg] = positionals;
	if (opts.help || !command) {
		process.stdout.write(USAGE);
		return command || opts.help ? EXIT.ok : EXIT.usage;
	}
	const name = commandOf(command, sub);
	switch (name) {
		case "run":
			if (arg !== undefined) throw new UsageError(`Unexpected "${arg}": files go with --image and --audio.`);
			return runCommand(sub);
		case "generate":
			if (sub !== undefined) throw new UsageError(`Unexpected "${sub}": generate takes the model as --model.`);
			return runCommand(opts.model ?? "preview");
		case "url": {
			const target = resolveApiUrl(opts.url);
			console.log(target.url);
			process.stderr.write(`(${target.source === "the default" ? "the default" : `from ${target.source}`})\n`);
			return EXIT.ok;
		}
		case "keys create":
			return keys();
	}
	if (command === "models") return models(sub, arg);
	return jobs(sub, arg);
}

/** A problem as a person reads it: the detail, or with several refused fields each on its own line. */
function describeProblem(err: ReelgateError): string {
	const where = `(${err.status} ${err.code}${err.requestId ? `, request ${err.requestId}` : ""})`;
	const fields = err.fieldErrors;
	if (fields.length <= 1) return `error: ${err.problem.detail} ${where}\n`;
	return `error: ${fields.length} fields refused ${where}:\n${fields.map((e) => `  ${e.field}: ${e.message}\n`).join("")}`;
}

main().then(
	(code) => process.exit(code),
	(err: unknown) => {
		if (err instanceof UsageError) {
			process.stderr.write(`${err.message}\n\n${USAGE}`);
			process.exit(EXIT.usage);
		}
		if (err instanceof ReelgateError) {
			process.stderr.write(describeProblem(err));
			// Refused before sending (the catalog's check) or by the API: either way the input is what to fix.
			const unavailable = err.status >= 500 || err.problem.code === "model_unavailable";
			process.exit(unavailable ? EXIT.unavailable : err.status === 400 ? EXIT.usage : EXIT.refused);
		}
		if (err instanceof ReelgateConnectionError) {
			process.stderr.write(`error: ${err.message}\n`);
			process.exit(EXIT.unavailable);
		}
		if (err instanceof JobFailedError) {
			process.stderr.write(`${err.message}\n`);
			process.exit(EXIT.jobFailed);
		}
		const interrupted = err instanceof Interrupted ? err : err instanceof Error ? err.cause : undefined;
		if (interrupted instanceof Interrupted) {
			process.stderr.write(`${interrupted.message}\n`);
			process.exit(EXIT.interrupted);
		}
		process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
		process.exit(EXIT.jobFailed);
	},
);
