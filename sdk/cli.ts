#!/usr/bin/env node
// `npm run reelgate -- <command>`: generate a video from files, inspect jobs, create API keys.
import { createReadStream, createWriteStream, existsSync, readFileSync } from "node:fs";
import { stat } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import { Reelgate, ReelgateError } from "./index.ts";
import { ProgressBar } from "./progress-bar.ts";
import type { CreateJobBody, JobStatus, Model } from "./types.ts";

const USAGE = `Usage: npm run reelgate -- <command> [options]

Commands:
  generate --image FILE [--audio FILE] [--model preview|wan2.2-i2v|wan2.2-s2v] [--prompt TEXT]
           [--resolution WxH] [--duration S] [--fps N] [--seed N] --out FILE.mp4
  jobs list [--status STATUS] [--limit N]
  jobs show JOB_ID
  keys create --name NAME [--account ACCOUNT] [--admin-token TOKEN]

Options for every command:
  --url URL          API origin (default http://127.0.0.1:8787, or REELGATE_URL)
  --api-key KEY      API key (default: the REELGATE_API_KEY environment variable)
`;

const CONTENT_TYPES: Record<string, string> = {
	".png": "image/png",
	".jpg": "image/jpeg",
	".jpeg": "image/jpeg",
	".webp": "image/webp",
	".wav": "audio/wav",
	".mp3": "audio/mpeg",
	".flac": "audio/flac",
	".ogg": "audio/ogg",
};

/** Exit status for a usage error, as most command-line tools use. */
const USAGE_ERROR = 2;

class UsageError extends Error {}

const { values: opts, positionals } = parseArgs({
	allowPositionals: true,
	options: {
		url: { type: "string" },
		"api-key": { type: "string" },
		"admin-token": { type: "string" },
		image: { type: "string" },
		audio: { type: "string" },
		model: { type: "string", default: "preview" },
		prompt: { type: "string" },
		resolution: { type: "string" },
		duration: { type: "string" },
		fps: { type: "string" },
		seed: { type: "string" },
		out: { type: "string" },
		status: { type: "string" },
		limit: { type: "string" },
		name: { type: "string" },
		account: { type: "string" },
		help: { type: "boolean", short: "h", default: false },
	},
});

const baseUrl = opts.url ?? process.env.REELGATE_URL ?? "http://127.0.0.1:8787";

function client(): Reelgate {
	const apiKey = opts["api-key"] ?? process.env.REELGATE_API_KEY;
	if (!apiKey) throw new UsageError("No API key: pass --api-key or set REELGATE_API_KEY.");
	return new Reelgate({ baseUrl, apiKey });
}

function numberOption(name: string, value: string | undefined): number | undefined {
	if (value === undefined) return undefined;
	const n = Number(value);
	if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, not "${value}".`);
	return n;
}

function contentTypeOf(file: string): string {
	const type = CONTENT_TYPES[path.extname(file).toLowerCase()];
	if (!type) throw new UsageError(`${file}: unknown file type; use one of ${Object.keys(CONTENT_TYPES).join(" ")}.`);
	return type;
}

async function upload(api: Reelgate, file: string, bar: ProgressBar) {
	if (!existsSync(file)) throw new UsageError(`${file}: no such file.`);
	const size = (await stat(file)).size;
	const bytes = Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array>;
	const label = `upload ${path.basename(file)}`.slice(0, 30);
	const result = await api.uploadFile(bytes, {
		filename: path.basename(file),
		contentType: contentTypeOf(file),
		onProgress: (sent) => bar.update(label, size ? (sent / size) * 100 : 100),
	});
	bar.done();
	return result;
}

async function generate(): Promise<number> {
	if (!opts.image) throw new UsageError("generate needs --image FILE.");
	if (!opts.out) throw new UsageError("generate needs --out FILE.mp4.");
	const api = client();
	const bar = new ProgressBar();
	const image = await upload(api, opts.image, bar);
	const audio = opts.audio ? await upload(api, opts.audio, bar) : undefined;
	const body: CreateJobBody = {
		model: opts.model as Model,
		input: {
			image: image.id,
			...(audio ? { audio: audio.id } : {}),
			...(opts.prompt ? { prompt: opts.prompt } : {}),
			...(opts.resolution ? { resolution: opts.resolution } : {}),
			...(opts.duration ? { duration_s: numberOption("duration", opts.duration) } : {}),
			...(opts.fps ? { fps: numberOption("fps", opts.fps) } : {}),
			...(opts.seed ? { seed: numberOption("seed", opts.seed) } : {}),
		},
	};
	const created = await api.createJob(body);
	process.stderr.write(`job ${created.id} (${created.model}) ${created.status}\n`);
	// Ctrl-C stops watching, not the job: it keeps running and can be looked at with `jobs show`.
	const interrupt = new AbortController();
	process.once("SIGINT", () => interrupt.abort(new Error(`Stopped watching; the job ${created.id} goes on.`)));
	const job = await api.waitForJob(created.id, {
		signal: interrupt.signal,
		onEvent: ({ job: j }) => bar.update(j.status, j.progress.percent, j.progress.stage ?? ""),
	});
	bar.done();
	if (job.status !== "succeeded") {
		process.stderr.write(
			`job ${job.id} ${job.status}${job.error ? `: ${job.error.code}: ${job.error.message}` : ""}\n`,
		);
		return 1;
	}
	await pipeline(Readable.fromWeb((await api.downloadVideo(job.id)) as never), createWriteStream(opts.out));
	const video = job.output?.video;
	process.stderr.write(
		`saved ${opts.out}${video ? ` (${video.size} bytes${video.width ? `, ${video.width}x${video.height}` : ""})` : ""}\n`,
	);
	console.log(JSON.stringify(job, null, 2));
	return 0;
}

async function jobs(sub: string | undefined, id: string | undefined): Promise<number> {
	const api = client();
	if (sub === "list") {
		const page = await api.listJobs({
			status: opts.status as JobStatus | undefined,
			limit: numberOption("limit", opts.limit),
		});
		console.log(JSON.stringify(page, null, 2));
		return 0;
	}
	if (sub === "show") {
		if (!id) throw new UsageError("jobs show needs a job id.");
		console.log(JSON.stringify(await api.getJob(id), null, 2));
		return 0;
	}
	throw new UsageError(`Unknown jobs command "${sub ?? ""}"; use list or show.`);
}

/** ADMIN_TOKEN from `.dev.vars` beside package.json: the file `npm start` writes for the local stack. */
function adminTokenFromDevVars(): string | undefined {
	const file = path.join(import.meta.dirname, "..", ".dev.vars");
	if (!existsSync(file)) return undefined;
	for (const line of readFileSync(file, "utf8").split(/\r?\n/)) {
		const m = /^\s*ADMIN_TOKEN\s*=\s*(.*?)\s*$/.exec(line);
		if (m?.[1] !== undefined) return m[1].replace(/^(["'])(.*)\1$/, "$2");
	}
	return undefined;
}

async function keys(sub: string | undefined): Promise<number> {
	if (sub !== "create") throw new UsageError(`Unknown keys command "${sub ?? ""}"; use create.`);
	if (!opts.name) throw new UsageError("keys create needs --name NAME.");
	const token = opts["admin-token"] ?? process.env.ADMIN_TOKEN ?? adminTokenFromDevVars();
	if (!token)
		throw new UsageError(
			"No admin token: pass --admin-token, set ADMIN_TOKEN, or run `npm start` once to write .dev.vars.",
		);
	const res = await fetch(`${baseUrl.replace(/\/+$/, "")}/v1/admin/keys`, {
		method: "POST",
		headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
		body: JSON.stringify({ name: opts.name, ...(opts.account ? { account: opts.account } : {}) }),
	});
	if (!res.ok) throw await ReelgateError.fromResponse(res);
	console.log(JSON.stringify(await res.json(), null, 2));
	return 0;
}

async function main(): Promise<number> {
	const [command, sub, arg] = positionals;
	if (opts.help || !command) {
		process.stdout.write(USAGE);
		return command || opts.help ? 0 : USAGE_ERROR;
	}
	switch (command) {
		case "generate":
			return generate();
		case "jobs":
			return jobs(sub, arg);
		case "keys":
			return keys(sub);
		default:
			throw new UsageError(`Unknown command "${command}".`);
	}
}

main().then(
	(code) => process.exit(code),
	(err: unknown) => {
		process.stderr.write("\n");
		if (err instanceof UsageError) {
			process.stderr.write(`${err.message}\n\n${USAGE}`);
			process.exit(USAGE_ERROR);
		}
		if (err instanceof ReelgateError) {
			process.stderr.write(
				`error: ${err.problem.detail} (${err.status} ${err.code}${err.requestId ? `, request ${err.requestId}` : ""})\n`,
			);
		} else {
			process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
		}
		process.exit(1);
	},
);
