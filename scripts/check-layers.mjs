#!/usr/bin/env node
// The static suite's layering check: the Worker's folders (each folder of src/, each top-level file of src/, and
// durable-objects/ as one) must import each other without cycles, type imports included. A cycle means two folders
// each need the other, so neither can be read or changed alone; this names every import on it.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { ROOT } from "./lib/paths.mjs";

const ROOTS = ["src", "durable-objects"];
const IMPORT = /^\s*(?:import|export)\s[^;]*?\sfrom\s+["']([^"']+)["']/gms;

function sourceFiles(dir) {
	return readdirSync(dir).flatMap((name) => {
		const full = path.join(dir, name);
		if (statSync(full).isDirectory()) return sourceFiles(full);
		return name.endsWith(".ts") ? [full] : [];
	});
}

/** The unit a file belongs to: `src/<folder>`, `src/<file>` for a file directly in src/, or `durable-objects`. */
function unitOf(file) {
	const [top, second, third] = path.relative(ROOT, file).split(path.sep);
	if (top !== "src") return top;
	return third === undefined ? `src/${second.replace(/\.ts$/, "")}` : `src/${second}`;
}

/** The file a relative specifier names, or null for packages, JSON and anything outside the checked roots. */
function resolve(from, specifier) {
	if (!specifier.startsWith(".")) return null;
	const base = path.resolve(path.dirname(from), specifier);
	for (const candidate of [base, `${base}.ts`, path.join(base, "index.ts")]) {
		if (candidate.endsWith(".ts") && existsSync(candidate) && statSync(candidate).isFile()) return candidate;
	}
	return null;
}

const edges = new Map();
for (const root of ROOTS) {
	for (const file of sourceFiles(path.join(ROOT, root))) {
		for (const [, specifier] of readFileSync(file, "utf8").matchAll(IMPORT)) {
			const target = resolve(file, specifier);
			if (!target || !ROOTS.some((r) => target.startsWith(path.join(ROOT, r) + path.sep))) continue;
			const [from, to] = [unitOf(file), unitOf(target)];
			if (from === to) continue;
			if (!edges.has(from)) edges.set(from, new Map());
			const via = edges.get(from).get(to) ?? [];
			via.push(`${path.relative(ROOT, file)} → ${path.relative(ROOT, target)}`);
			edges.get(from).set(to, via);
		}
	}
}

// Tarjan's strongly connected components: every component of more than one unit holds a cycle.
const index = new Map();
const low = new Map();
const stack = [];
const onStack = new Set();
const components = [];
let counter = 0;
function visit(unit) {
	index.set(unit, counter);
	low.set(unit, counter);
	counter++;
	stack.push(unit);
	onStack.add(unit);
	for (const next of edges.get(unit)?.keys() ?? []) {
		if (!index.has(next)) {
			visit(next);
			low.set(unit, Math.min(low.get(unit), low.get(next)));
		} else if (onStack.has(next)) low.set(unit, Math.min(low.get(unit), index.get(next)));
	}
	if (low.get(unit) !== index.get(unit)) return;
	const component = [];
	let member;
	do {
		member = stack.pop();
		onStack.delete(member);
		component.push(member);
	} while (member !== unit);
	if (component.length > 1) components.push(component.sort());
}
for (const unit of [...edges.keys()].sort()) if (!index.has(unit)) visit(unit);

if (components.length === 0) {
	console.log(`layers: no import cycles between ${index.size} folders`);
	process.exit(0);
}
for (const component of components) {
	console.error(`layers: these folders import each other: ${component.join(", ")}`);
	for (const from of component) {
		for (const [to, via] of edges.get(from) ?? []) {
			if (component.includes(to)) for (const line of via) console.error(`  ${from} → ${to}: ${line}`);
		}
	}
}
process.exit(1);
