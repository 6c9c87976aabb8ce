// Reads the subset of TOML that wrangler.toml uses here: tables, arrays of tables, strings, numbers, booleans
// and one-line arrays. Enough for the deploy script to find an environment's names and ids without a dependency.

function value(text, where) {
	const t = text.trim();
	if (t.startsWith('"')) return JSON.parse(t);
	if (t.startsWith("'")) return t.slice(1, -1);
	if (t === "true" || t === "false") return t === "true";
	if (t.startsWith("[")) {
		const inner = t.slice(1, -1).trim();
		if (!inner) return [];
		return inner
			.split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/)
			.map((s) => s.trim())
			.filter(Boolean)
			.map((s) => value(s, where));
	}
	if (t.startsWith("{")) {
		const out = {};
		for (const pair of t.slice(1, -1).split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/)) {
			if (!pair.trim()) continue;
			const [k, ...v] = pair.split("=");
			out[k.trim()] = value(v.join("="), where);
		}
		return out;
	}
	const n = Number(t);
	if (Number.isFinite(n)) return n;
	throw new Error(`wrangler.toml: cannot read value ${t} (${where})`);
}

/** Strips a trailing comment that is not inside a string. */
function stripComment(line) {
	let inStr = false;
	for (let i = 0; i < line.length; i++) {
		const c = line[i];
		if (c === '"' && line[i - 1] !== "\\") inStr = !inStr;
		if (c === "#" && !inStr) return line.slice(0, i);
	}
	return line;
}

/** @param {string} text @returns {Record<string, any>} */
export function parseToml(text) {
	const root = {};
	let current = root;
	text.split(/\r?\n/).forEach((raw, i) => {
		const line = stripComment(raw).trim();
		if (!line) return;
		const arr = /^\[\[([^\]]+)\]\]$/.exec(line);
		const tbl = /^\[([^\]]+)\]$/.exec(line);
		if (arr || tbl) {
			const keys = (arr ?? tbl)[1].split(".").map((k) => k.trim());
			let node = root;
			for (const k of keys.slice(0, -1)) {
				node[k] ??= {};
				node = Array.isArray(node[k]) ? node[k].at(-1) : node[k];
			}
			const last = keys.at(-1);
			if (arr) {
				node[last] ??= [];
				node[last].push({});
				current = node[last].at(-1);
			} else {
				node[last] ??= {};
				current = node[last];
			}
			return;
		}
		const eq = line.indexOf("=");
		if (eq < 0) throw new Error(`wrangler.toml line ${i + 1}: expected key = value`);
		current[line.slice(0, eq).trim().replace(/^"|"$/g, "")] = value(line.slice(eq + 1), `line ${i + 1}`);
	});
	return root;
}
