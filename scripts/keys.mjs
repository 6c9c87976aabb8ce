#!/usr/bin/env node
// `npm run keys -- create|list|revoke`: API keys through the admin API of the local stack or a deployed one.
import { parseArgs } from "node:util";
import { readDevVars } from "./lib/dev-vars.mjs";
import { resolveApiUrl, unreachableMessage } from "./lib/local-stack.mjs";
import { DEV_VARS } from "./lib/paths.mjs";

const HELP = `Usage:
  npm run keys -- create --name NAME [--account ACCOUNT] [--scopes jobs:read,jobs:write[,account:admin]]
  npm run keys -- list
  npm run keys -- revoke KEY_ID

By default these talk to the local stack that \`npm start\` runs (it records its URL in .reelgate/local.json;
without it http://127.0.0.1:8787) with the ADMIN_TOKEN from .dev.vars. For another one: --url https://…
--admin-token … (or env REELGATE_URL, REELGATE_ADMIN_TOKEN). Prints the API's JSON answer.`;

const { values: opts, positionals } = parseArgs({
	allowPositionals: true,
	options: {
		name: { type: "string" },
		account: { type: "string" },
		scopes: { type: "string" },
		url: { type: "string" },
		"admin-token": { type: "string" },
		help: { type: "boolean", short: "h", default: false },
	},
});

function die(message, code = 1) {
	console.error(message);
	process.exit(code);
}

const [command, ...rest] = positionals;
if (opts.help || !command) die(HELP, opts.help ? 0 : 1);

const target = resolveApiUrl(opts.url);
const baseUrl = target.url;
const remote = target.source === "--url" || target.source === "REELGATE_URL";
// The local stack's token lives where its record says (the .dev.vars that `npm start` wrote).
const devVars = target.stack?.admin_token_file ?? DEV_VARS;
const adminToken = opts["admin-token"] ?? process.env.REELGATE_ADMIN_TOKEN ?? readDevVars(devVars).ADMIN_TOKEN;
if (!adminToken) {
	die(
		remote
			? "No admin token: pass --admin-token (the ADMIN_TOKEN secret of that deployment)."
			: `No ADMIN_TOKEN in ${devVars}: start the local stack once with \`npm start\`, or pass --admin-token.`,
	);
}

async function call(method, path, body) {
	let res;
	try {
		res = await fetch(`${baseUrl}${path}`, {
			method,
			headers: {
				authorization: `Bearer ${adminToken}`,
				...(body ? { "content-type": "application/json" } : {}),
			},
			body: body ? JSON.stringify(body) : undefined,
			signal: AbortSignal.timeout(15_000),
		});
	} catch (err) {
		die(unreachableMessage(target, err));
	}
	const text = await res.text();
	let json;
	try {
		json = JSON.parse(text);
	} catch {
		die(`${method} ${path}: HTTP ${res.status}, not JSON: ${text.slice(0, 300)}`);
	}
	if (!res.ok) {
		const hint = res.status === 401 || res.status === 403 ? " (is the admin token the one this API uses?)" : "";
		die(`${method} ${path}: HTTP ${res.status}${hint}\n${JSON.stringify(json, null, 2)}`);
	}
	return json;
}

let result;
switch (command) {
	case "create": {
		if (!opts.name) die(`create needs --name NAME.\n\n${HELP}`);
		const body = { name: opts.name };
		if (opts.account) body.account = opts.account;
		if (opts.scopes)
			body.scopes = opts.scopes
				.split(",")
				.map((s) => s.trim())
				.filter(Boolean);
		result = await call("POST", "/v1/admin/keys", body);
		break;
	}
	case "list":
		result = await call("GET", "/v1/admin/keys");
		break;
	case "revoke": {
		const id = rest[0];
		if (!id) die("revoke needs the key's id: npm run keys -- revoke key_…");
		result = await call("DELETE", `/v1/admin/keys/${encodeURIComponent(id)}`);
		break;
	}
	default:
		die(`Unknown command "${command}".\n\n${HELP}`);
}
console.log(JSON.stringify(result, null, 2));
