#!/usr/bin/env node
// `npm test`: the type checks (Workers side, shipped code alone, Node side), Biome, the layering check and the check
// that the generated Env types are current, the workerd suite (vitest), the SDK's Node suite, the operations suite
// (deploy scripts against RunPod/Cloudflare API emulators, costs), the R2 presigner against a real S3 server
// (test/s3, versitygw), the pytest suites, then the end-to-end and browser (demo page in Chromium, CLI) suites
// against the real local stack, the schema fuzz run (test/fuzz) and the chaos run (test/chaos); one closing line
// `N passed, N failed[, N skipped]` summed over all of them.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { nodeBinary, ROOT, requireInstalled, toolEnv, vitestArgv } from "./lib/paths.mjs";
import { preflight } from "./lib/preflight.mjs";

const SUITES = ["static", "worker", "sdk", "ops", "s3", "python", "e2e", "browser", "fuzz", "chaos"];

const { values: opts } = parseArgs({
	options: { only: { type: "string", multiple: true }, help: { type: "boolean", short: "h", default: false } },
});
if (opts.help) {
	console.log(`Usage: npm test [-- --only ${SUITES.join("|")}]  (repeat --only or separate with commas)`);
	process.exit(0);
}
const only = (opts.only ?? [])
	.flatMap((s) => s.split(","))
	.map((s) => s.trim())
	.filter(Boolean);
for (const s of only) {
	if (!SUITES.includes(s)) {
		console.error(`Unknown suite "${s}"; choose from ${SUITES.join(", ")}.`);
		process.exit(2);
	}
}
const selected = only.length ? SUITES.filter((s) => only.includes(s)) : SUITES;

requireInstalled();
const work = mkdtempSync(path.join(tmpdir(), "reelgate-test-"));
const totals = { passed: 0, failed: 0, skipped: 0 };
const notes = [];

/** Runs a command, passing its output through; resolves with its exit code and the output text. */
function run(cmd, args, env) {
	return new Promise((resolve) => {
		const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
		let out = "";
		const keep = (chunk) => {
			out += chunk;
			if (out.length > 200_000) out = out.slice(-100_000);
		};
		child.stdout.on("data", (c) => {
			process.stdout.write(c);
			keep(c);
		});
		child.stderr.on("data", (c) => {
			process.stderr.write(c);
			keep(c);
		});
		child.on("error", (err) => resolve({ code: 127, out: `${out}\n${err.message}` }));
		child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), out }));
	});
}

function record(suite, counts, message) {
	totals.passed += counts.passed;
	totals.failed += counts.failed;
	totals.skipped += counts.skipped;
	const line = `[${suite}] ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`;
	notes.push(message ? `${line}: ${message}` : line);
}

/** A suite that could not run or crashed counts as one failure, with the reason in the summary. */
function crashed(suite, message) {
	record(suite, { passed: 0, failed: 1, skipped: 0 }, message);
}

/** Counts from vitest's JSON report; a file that failed to load (no tests) counts as one failure. */
function vitestCounts(file) {
	const report = JSON.parse(readFileSync(file, "utf8"));
	let brokenFiles = 0;
	for (const r of report.testResults ?? []) {
		const failedTests = (r.assertionResults ?? []).filter((a) => a.status === "failed").length;
		if (r.status === "failed" && failedTests === 0) brokenFiles++;
	}
	return {
		passed: report.numPassedTests ?? 0,
		failed: (report.numFailedTests ?? 0) + brokenFiles,
		skipped: (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0),
		total: report.numTotalTests ?? 0,
	};
}

async function vitestSuite(suite, configArgs, env) {
	const json = path.join(work, `${suite}.json`);
	const [node, args] = vitestArgv([
		"run",
		...configArgs,
		"--reporter=default",
		"--reporter=json",
		`--outputFile.json=${json}`,
	]);
	const { code } = await run(node, args, env);
	if (!existsSync(json)) return crashed(suite, `vitest exited ${code} without a report (see its output above)`);
	let counts;
	try {
		counts = vitestCounts(json);
	} catch (err) {
		return crashed(suite, `unreadable vitest report: ${err.message}`);
	}
	if (code !== 0 && counts.failed === 0) {
		counts.failed = 1;
		return record(suite, counts, `vitest exited ${code} with no failing test (an error outside the tests; see above)`);
	}
	if (counts.total === 0) return record(suite, counts, "no tests found");
	record(suite, counts);
}

/** Sums pytest's junit XML (`<testsuite tests= failures= errors= skipped=>`). */
function junitCounts(file) {
	const xml = readFileSync(file, "utf8");
	const c = { tests: 0, failures: 0, errors: 0, skipped: 0 };
	for (const m of xml.matchAll(/<testsuite\b([^>]*)>/g)) {
		for (const k of Object.keys(c)) {
			const v = m[1].match(new RegExp(`\\b${k}="(\\d+)"`));
			if (v) c[k] += Number(v[1]);
		}
	}
	const failed = c.failures + c.errors;
	return { passed: Math.max(0, c.tests - failed - c.skipped), failed, skipped: c.skipped };
}

/** Fallback: pytest's own closing line, e.g. `=== 3 failed, 40 passed, 2 skipped in 1.2s ===`. */
function pytestSummary(out) {
	const lines = out.split(/\r?\n/).filter((l) => /^=+ .*\bin [\d.]+s/.test(l));
	const last = lines.at(-1);
	if (!last) return undefined;
	const n = (word) => Number(last.match(new RegExp(`(\\d+) ${word}`))?.[1] ?? 0);
	return { passed: n("passed"), failed: n("failed") + n("errors?"), skipped: n("skipped") + n("xfailed") };
}

async function pythonSuite(env) {
	const script = path.join(ROOT, "scripts", "python-tests.mjs");
	if (!existsSync(script)) return crashed("python", "scripts/python-tests.mjs is missing");
	const xml = path.join(work, "python.xml");
	const addopts = [process.env.PYTEST_ADDOPTS, `--junitxml=${xml}`].filter(Boolean).join(" ");
	const { code, out } = await run(nodeBinary(), [script], { ...env, PYTEST_ADDOPTS: addopts });
	// pytest exit 5: no tests were collected.
	if (code === 5) return record("python", { passed: 0, failed: 0, skipped: 0 }, "pytest collected no tests");
	let counts;
	if (existsSync(xml)) {
		try {
			counts = junitCounts(xml);
		} catch {}
	}
	counts ??= pytestSummary(out);
	if (!counts) return crashed("python", `the suite exited ${code} without a pytest result (see its output above)`);
	if (code !== 0 && counts.failed === 0) {
		counts.failed = 1;
		return record("python", counts, `exited ${code} with no failing test (setup error; see above)`);
	}
	record("python", counts);
}

/**
 * The type checks, the linter/formatter, the layering check (no import cycles between folders), the generated
 * types check (worker-configuration.d.ts is what `wrangler types` makes now) and the install check (lock file,
 * allowScripts), each counted as one check.
 */
async function staticSuite(env) {
	const bin = (name) => path.join(ROOT, "node_modules", ".bin", name);
	const checks = [
		["typecheck", bin("tsc"), ["--noEmit"]],
		["typecheck:node", bin("tsc"), ["-p", "tsconfig.node.json", "--noEmit"]],
		["typecheck:runtime", bin("tsc"), ["-p", "tsconfig.runtime.json", "--noEmit"]],
		["lint", bin("biome"), ["check", "."]],
		["layers", nodeBinary(), [path.join(ROOT, "scripts", "check-layers.mjs")]],
		["types", nodeBinary(), [path.join(ROOT, "scripts", "check-types.mjs")]],
		["install", nodeBinary(), [path.join(ROOT, "scripts", "check-install.mjs")]],
	];
	const counts = { passed: 0, failed: 0, skipped: 0 };
	const failedNames = [];
	for (const [name, cmd, args] of checks) {
		const { code } = await run(cmd, args, env);
		if (code === 0) counts.passed++;
		else {
			counts.failed++;
			failedNames.push(name);
		}
	}
	record("static", counts, failedNames.length ? `failed: ${failedNames.join(", ")} (see above)` : undefined);
}

async function main() {
	const pre = preflight();
	const env = toolEnv(pre.env);
	const blocked = new Map();
	for (const p of pre.problems) {
		if (!p.optional) {
			console.error(`\nMissing: ${p.message}`);
			for (const s of p.suites) blocked.set(s, p.message);
		} else if (pre.ci) {
			console.error(`\nMissing under CI: ${p.message}`);
			crashed(`preflight`, `${p.tool} missing under CI=true. ${p.message}`);
		} else {
			console.warn(`\nNote: ${p.message} (checks that need it are skipped outside CI).`);
		}
	}

	for (const suite of selected) {
		console.log(`\n━━ ${suite} ━━`);
		if (blocked.has(suite)) {
			crashed(suite, `not run: ${blocked.get(suite)}`);
			continue;
		}
		try {
			if (suite === "static") await staticSuite(env);
			else if (suite === "worker") await vitestSuite("worker", [], env);
			else if (suite === "python") await pythonSuite(env);
			else await vitestSuite(suite, ["--config", `test/${suite}/vitest.config.ts`], env);
		} catch (err) {
			crashed(suite, `the runner failed: ${err.message}`);
		}
	}

	rmSync(work, { recursive: true, force: true });
	console.log("\nSummary:");
	for (const n of notes) console.log(`  ${n}`);
	const skipped = totals.skipped ? `, ${totals.skipped} skipped` : "";
	console.log(`${totals.passed} passed, ${totals.failed} failed${skipped}`);
	process.exit(totals.failed > 0 ? 1 : 0);
}

main();
