// Reading and completing `.dev.vars` (the local Worker's secrets) without ever overwriting a value.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";

/**
 * Parses a dotenv-style file: KEY=value lines, `#` comments, optional surrounding quotes.
 * @param {string} text
 * @returns {Record<string, string>}
 */
export function parseDevVars(text) {
	/** @type {Record<string, string>} */
	const vars = {};
	for (const raw of text.split(/\r?\n/)) {
		const line = raw.trim();
		if (!line || line.startsWith("#")) continue;
		const eq = line.indexOf("=");
		if (eq <= 0) continue;
		const key = line.slice(0, eq).trim();
		let value = line.slice(eq + 1).trim();
		if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.at(-1) === value[0]) {
			value = value.slice(1, -1);
		}
		vars[key] = value;
	}
	return vars;
}

/**
 * @param {string} file
 * @returns {Record<string, string>}
 */
export function readDevVars(file) {
	return existsSync(file) ? parseDevVars(readFileSync(file, "utf8")) : {};
}

const token = () => randomBytes(32).toString("base64url");

/** Secrets `npm start` needs, each with a generator for a fresh random value. */
export const GENERATED_SECRETS = {
	ADMIN_TOKEN: token,
	SIGNING_SECRET: token,
	BACKEND_SECRETS_KEY: () => randomBytes(32).toString("base64"),
	POD_API_TOKEN: token,
};

/**
 * Parsed values, every generated secret among them.
 * @typedef {Record<keyof typeof GENERATED_SECRETS, string> & Record<string, string>} DevVars
 */

/**
 * Adds a random value for every missing or empty secret; existing values are kept as they are.
 * Returns the complete set of values and the names that were added.
 * @param {string} file
 * @returns {{ vars: DevVars, added: string[], created: boolean }}
 */
export function ensureDevVars(file) {
	const existed = existsSync(file);
	const text = existed ? readFileSync(file, "utf8") : "";
	const vars = parseDevVars(text);
	const added = [];
	const lines = [];
	for (const [name, make] of Object.entries(GENERATED_SECRETS)) {
		if (vars[name]) continue;
		vars[name] = make();
		added.push(name);
		lines.push(`${name}=${vars[name]}`);
	}
	if (added.length > 0) {
		// An empty `NAME=` line (as in .dev.vars.example) would shadow the appended one: drop those first.
		const kept = text
			.split(/\r?\n/)
			.filter((l) => !added.some((n) => new RegExp(`^\\s*${n}\\s*=`).test(l)))
			.join("\n")
			.replace(/\n*$/, "");
		const header = existed
			? ""
			: "# Local secrets for `wrangler dev`, written by `npm start`. Never commit this file.\n";
		writeFileSync(file, `${header}${kept ? `${kept}\n` : ""}${lines.join("\n")}\n`, { mode: 0o600 });
	}
	return { vars, added, created: !existed };
}
