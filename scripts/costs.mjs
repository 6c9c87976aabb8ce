#!/usr/bin/env node
// `npm run costs`: what the recorded workload cost, and what it would have cost on each kind of backend
// (per-second serverless, an hourly RunPod Pod, an hourly vast.ai instance), with the break-even utilization.
// The workload comes from the recorded jobs: the admin usage API of a running Reelgate (REELGATE_URL +
// ADMIN_TOKEN), or a saved `GET /v1/admin/usage` answer (--file). The arithmetic is src/ops/cost-model.ts.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { compareCosts, DEFAULT_PRICES } from "../src/ops/cost-model.ts";
import {
	CLOUDFLARE_RATES,
	countProviderPolls,
	priceJob,
	RUNPOD_H100_PER_SECOND_USD,
	wanJobScenarios,
} from "../src/ops/platform-cost.ts";
import { HttpError } from "./lib/http-json.mjs";
import { reelgateAdmin } from "./lib/reelgate-admin.mjs";

const USAGE = `Usage: npm run costs -- [--from ISO] [--to ISO] [--file usage.json] [--json]
       [--serverless-per-s USD] [--pod-per-h USD] [--vast-per-h USD] [--account ID]
       npm run costs -- --per-job [--json]   (Cloudflare's cost of one 5-minute Wan job beside its GPU cost)
Reads GET /v1/admin/usage from REELGATE_URL with ADMIN_TOKEN, or a saved answer with --file.
Default prices (one 80 GB GPU): serverless $${DEFAULT_PRICES.serverless_per_second_usd}/s, pod $${DEFAULT_PRICES.pod_per_hour_usd}/h, vast.ai $${DEFAULT_PRICES.vastai_per_hour_usd}/h: pass yours.`;

export class CostsError extends Error {}

function price(value, fallback, flag) {
	if (value === undefined) return fallback;
	const n = Number(value);
	if (!(n >= 0) || !Number.isFinite(n)) throw new CostsError(`--${flag} must be a number ≥ 0, got "${value}".`);
	return n;
}

/** The workload of a usage report (the shape of GET /v1/admin/usage). */
export function workloadOf(usage) {
	if (!usage?.totals || typeof usage.window_seconds !== "number") {
		throw new CostsError("Not a usage report: expected `totals` and `window_seconds` (GET /v1/admin/usage).");
	}
	// vast.ai bills the whole rental; jobs carry only their run time. The rest (boot, idle) was paid all the same.
	const overhead = (usage.rentals ?? []).reduce((sum, r) => sum + (r.unattributed_usd ?? 0), 0);
	return {
		window_seconds: usage.window_seconds,
		jobs: usage.totals.jobs,
		gpu_seconds: usage.totals.gpu_seconds,
		recorded_cost_usd: usage.totals.cost_usd,
		rental_overhead_usd: Math.round(overhead * 1e6) / 1e6,
	};
}

const usd = (x) => `$${x < 10 ? x.toFixed(4) : x.toFixed(2)}`;
const pct = (x) => `${(x * 100).toFixed(1)}%`;

/** The report as text lines. */
export function formatReport(report, usage) {
	const w = report.workload;
	const p = report.prices;
	const hours = w.window_seconds / 3600;
	const lines = [
		`Workload ${usage.from} → ${usage.to} (${(hours / 24).toFixed(1)} days): ${w.jobs} jobs, ${(w.gpu_seconds / 3600).toFixed(2)} GPU-hours (${pct(report.utilization)} of one GPU)`,
		w.rental_overhead_usd > 0
			? `Recorded cost: ${usd(w.recorded_cost_usd)} carried by jobs + ${usd(w.rental_overhead_usd)} of vast.ai boot and idle time = ${usd(w.recorded_cost_usd + w.rental_overhead_usd)} paid`
			: `Recorded cost: ${usd(w.recorded_cost_usd)}`,
	];
	for (const b of usage.by_backend ?? []) {
		lines.push(
			`  ${b.backend_name ?? "(none)"} (${b.backend_kind ?? "?"}): ${b.jobs} jobs, ${(b.gpu_seconds / 3600).toFixed(2)} GPU-h, ${usd(b.cost_usd)}`,
		);
	}
	for (const r of usage.rentals ?? []) {
		lines.push(
			`  ${r.backend_name} (vast.ai rentals): ${r.instances} instances, ${(r.billed_seconds / 3600).toFixed(2)} h billed (${(r.boot_seconds / 3600).toFixed(2)} h booting), ${usd(r.billed_usd)}: ${usd(r.jobs_cost_usd)} carried by jobs, ${usd(r.unattributed_usd)} boot and idle`,
		);
	}
	lines.push("On each kind of backend:");
	for (const e of report.estimates) {
		const how =
			e.kind === "serverless"
				? `${w.gpu_seconds.toFixed(0)} s × $${p.serverless_per_second_usd}/s`
				: `${e.gpus} GPU × ${hours.toFixed(1)} h × $${e.kind === "pod" ? p.pod_per_hour_usd : p.vastai_per_hour_usd}/h`;
		lines.push(
			`  ${e.kind.padEnd(10)} ${usd(e.cost_usd).padStart(11)}   (${how})${e.kind === report.cheapest ? "  ← cheapest" : ""}`,
		);
	}
	const be = report.break_even;
	const jobs = (n) => (n === null ? "" : `, ≈${Math.ceil(n)} jobs of the mean length`);
	lines.push(
		`Break-even: an always-on pod pays off above ${pct(be.pod_utilization)} busy (${Math.round(be.pod_gpu_seconds)} GPU-seconds in this window${jobs(be.pod_jobs)}); vast.ai above ${pct(be.vastai_utilization)} (${Math.round(be.vastai_gpu_seconds)} s${jobs(be.vastai_jobs)}).`,
	);
	return lines;
}

/** The platform cost of one 5-minute Wan job in its four cases, as a markdown table (plus the rows). */
export function perJobReport() {
	const polls = {
		webhook: countProviderPolls(300_000, 5_000, true),
		polling: countProviderPolls(300_000, 5_000, false),
	};
	const rows = wanJobScenarios(polls).map(({ name, s }) => ({ name, polls: s.providerPolls, ...priceJob(s) }));
	const money = (x) => `$${x.toFixed(6)}`;
	const lines = [
		"| case | provider calls | Worker requests | DO requests | DO GB-s | DO rows r/w | D1 rows r/w | R2 A/B | Workers | DOs | D1 | R2 | platform | GPU (H100, 300 s) | platform / GPU |",
		"|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
	];
	for (const r of rows) {
		const c = r.counts;
		lines.push(
			`| ${r.name} | ${r.polls + 1} | ${c.worker_requests} | ${c.do_requests} | ${c.do_gb_s.toFixed(1)} | ${c.do_rows_read}/${c.do_rows_written} | ${c.d1_rows_read}/${c.d1_rows_written} | ${c.r2_class_a}/${c.r2_class_b} | ${money(r.usd.workers)} | ${money(r.usd.durable_objects)} | ${money(r.usd.d1)} | ${money(r.usd.r2)} | ${money(r.platform_usd)} | $${r.gpu_usd.toFixed(3)} | ${(r.ratio * 100).toFixed(2)} % |`,
		);
	}
	return { rows, lines, rates: CLOUDFLARE_RATES, gpu_per_second_usd: RUNPOD_H100_PER_SECOND_USD };
}

/** @param {string[]} argv @param {{ env?: NodeJS.ProcessEnv, fetch?: typeof fetch, log?: (l: string) => void }} [io] */
export async function costs(argv, io = {}) {
	const { values: o } = parseArgs({
		args: argv,
		options: {
			from: { type: "string" },
			to: { type: "string" },
			account: { type: "string" },
			file: { type: "string" },
			json: { type: "boolean", default: false },
			"serverless-per-s": { type: "string" },
			"pod-per-h": { type: "string" },
			"vast-per-h": { type: "string" },
			"per-job": { type: "boolean", default: false },
			help: { type: "boolean", short: "h", default: false },
		},
	});
	const log = io.log ?? ((l) => console.log(l));
	if (o.help) return log(USAGE);
	if (o["per-job"]) {
		const report = perJobReport();
		if (o.json)
			log(
				JSON.stringify(
					{ rows: report.rows, rates: report.rates, gpu_per_second_usd: report.gpu_per_second_usd },
					null,
					2,
				),
			);
		else for (const l of report.lines) log(l);
		return report;
	}
	const prices = {
		serverless_per_second_usd: price(
			o["serverless-per-s"],
			DEFAULT_PRICES.serverless_per_second_usd,
			"serverless-per-s",
		),
		pod_per_hour_usd: price(o["pod-per-h"], DEFAULT_PRICES.pod_per_hour_usd, "pod-per-h"),
		vastai_per_hour_usd: price(o["vast-per-h"], DEFAULT_PRICES.vastai_per_hour_usd, "vast-per-h"),
	};
	let usage;
	if (o.file) {
		try {
			usage = JSON.parse(readFileSync(o.file, "utf8"));
		} catch (err) {
			throw new CostsError(`Cannot read ${o.file}: ${err.message}`);
		}
	} else {
		const admin = reelgateAdmin(io.env ?? process.env, io.fetch);
		if (!admin) throw new CostsError(`Set REELGATE_URL and ADMIN_TOKEN (or pass --file usage.json).\n\n${USAGE}`);
		const q = new URLSearchParams();
		for (const k of ["from", "to", "account"]) if (o[k]) q.set(k, o[k]);
		usage = await admin.getUsage(q.toString());
	}
	const report = compareCosts(workloadOf(usage), prices);
	if (o.json) log(JSON.stringify(report, null, 2));
	else for (const l of formatReport(report, usage)) log(l);
	return report;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
	costs(process.argv.slice(2)).catch((err) => {
		const known = err instanceof CostsError || err instanceof HttpError || err?.code?.startsWith?.("ERR_PARSE_ARGS");
		console.error(`Error: ${known ? err.message : (err?.stack ?? err)}`);
		process.exit(known ? 2 : 1);
	});
}
