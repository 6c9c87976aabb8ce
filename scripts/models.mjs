#!/usr/bin/env node
// `npm run models -- schema|check|push`: the model manifests in models/ and model files in R2 (docs/models.md).
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { workerModelFilesJson } from "../src/models/files-list.ts";
import { ModelManifestSchema, manifestJsonSchema } from "../src/models/manifest.ts";
import { ROOT } from "./lib/paths.mjs";
import { mirrorModelFile, pushModelFile } from "./lib/push-model-file.mjs";

const HELP = `Usage:
  npm run models -- schema         write models/manifest.schema.json (the manifest format as JSON Schema)
  npm run models -- check [FILE…]  validate manifests (default: every models/*.json)
  npm run models -- files          write gpu-worker/model-files.json from the manifests' files
  npm run models -- push FILE --folder unet [--name NAME] [--part-mb 64]
                                   upload a model file into R2 at models/FOLDER/NAME through Reelgate's admin
                                   API (REELGATE_URL, ADMIN_TOKEN); resumable: rerun after a failure
  npm run models -- mirror URL --folder unet [--name NAME] [--sha256 HEX]
                                   the same for a public file: downloaded (and checked), then pushed`;

const MODELS_DIR = path.join(ROOT, "models");
const SCHEMA_FILE = path.join(MODELS_DIR, "manifest.schema.json");

const { values: opts, positionals } = parseArgs({
	allowPositionals: true,
	options: {
		help: { type: "boolean", short: "h", default: false },
		folder: { type: "string" },
		name: { type: "string" },
		"part-mb": { type: "string" },
		sha256: { type: "string" },
	},
});
const [command, ...rest] = positionals;
if (opts.help || !command) {
	console.log(HELP);
	process.exit(opts.help ? 0 : 1);
}

function manifestFiles() {
	return readdirSync(MODELS_DIR)
		.filter((f) => f.endsWith(".json") && f !== "manifest.schema.json")
		.sort()
		.map((f) => path.join(MODELS_DIR, f));
}

function check(files) {
	let bad = 0;
	for (const file of files) {
		const result = ModelManifestSchema.safeParse(JSON.parse(readFileSync(file, "utf8")));
		if (result.success) {
			console.log(`ok       ${path.relative(ROOT, file)} (${result.data.id} ${result.data.version})`);
			continue;
		}
		bad++;
		console.log(`INVALID  ${path.relative(ROOT, file)}`);
		for (const issue of result.error.issues) console.log(`  ${issue.path.join(".") || "(root)"}: ${issue.message}`);
	}
	return bad === 0 ? 0 : 1;
}

switch (command) {
	case "schema":
		writeFileSync(SCHEMA_FILE, `${JSON.stringify(manifestJsonSchema(), null, "\t")}\n`);
		console.log(`wrote ${path.relative(ROOT, SCHEMA_FILE)}`);
		break;
	case "check": {
		const files = rest.length ? rest.map((f) => path.resolve(f)) : manifestFiles();
		process.exit(check(files));
		break;
	}
	case "files": {
		const manifests = manifestFiles().map((f) => ModelManifestSchema.parse(JSON.parse(readFileSync(f, "utf8"))));
		const out = path.join(ROOT, "gpu-worker", "model-files.json");
		writeFileSync(out, workerModelFilesJson(manifests));
		console.log(`wrote ${path.relative(ROOT, out)}`);
		break;
	}
	case "mirror":
	case "push": {
		const [file] = rest;
		if (!file || !opts.folder) {
			console.error(`${command} needs a FILE (a URL to mirror) and --folder.\n${HELP}`);
			process.exit(1);
		}
		if (!process.env.REELGATE_URL || !process.env.ADMIN_TOKEN) {
			console.error(`${command} needs REELGATE_URL and ADMIN_TOKEN in the environment.`);
			process.exit(1);
		}
		try {
			const common = {
				base: process.env.REELGATE_URL,
				token: process.env.ADMIN_TOKEN,
				folder: opts.folder,
				partSize: opts["part-mb"] ? Number(opts["part-mb"]) * 1024 * 1024 : undefined,
				log: (line) => console.log(line),
			};
			const done =
				command === "mirror"
					? await mirrorModelFile({ ...common, url: file, name: opts.name, sha256: opts.sha256, workDir: os.tmpdir() })
					: await pushModelFile({ ...common, file, name: opts.name ?? path.basename(file) });
			console.log(`r2_key: ${done.key}\nsize:   ${done.size}\nsha256: ${done.sha256}`);
		} catch (err) {
			console.error(`${command} failed: ${err.message}`);
			process.exit(1);
		}
		break;
	}
	default:
		console.error(`Unknown command "${command}".\n${HELP}`);
		process.exit(1);
}
