#!/usr/bin/env node
// CPU per request of the status read and of job creation: first the whole runtime's CPU time per request (workerd's
// processes, from /proc: JavaScript, SQLite, the local D1 and R2 services) beside the bare hello route's and a new job
// object's, under a load without the profiler; then V8 CPU profiles of the Worker's isolate taken through workerd's
// inspector while a closed-loop load of each route runs (miniflare, 8 connections, 5 s), with where the sampled CPU
// goes (self time by function, the top ones). Prints a markdown section.
import { mkdir, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import path from "node:path";
import WebSocket from "ws";
import { startMiniflareStack } from "./lib/bench-stack.mjs";
import { createJob, prepareAccount, putBenchPod, startPodEmulator } from "./lib/fixtures.mjs";
import { runLoad } from "./lib/load.mjs";
import { cpuMsOf } from "./lib/workerd-cpu.mjs";
import { workerdPids } from "./lib/workerd-memory.mjs";

const DURATION_MS = Number(process.env.BENCH_PROFILE_MS) || 5_000;
/** Which routes to profile: `read` (the status read), `create` (`POST /v1/jobs`), or both (the default). */
const ROUTES = process.env.BENCH_PROFILE_ROUTE ? [process.env.BENCH_PROFILE_ROUTE] : ["read", "create"];
const TOP = 12;
/** A folder to keep each route's raw V8 profile in (`<route>.cpuprofile`, for DevTools), when set. */
const SAVE_DIR = process.env.BENCH_PROFILE_SAVE;
/** How long each route runs, unprofiled, for the runtime's CPU per request; the least of ROUNDS rounds is kept. */
const CPU_MS = 3_000;
const ROUNDS = 3;

/** A free loopback port for the inspector. */
function freePort() {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.listen(0, "127.0.0.1", () => {
			const { port } = server.address();
			server.close(() => resolve(port));
		});
		server.on("error", reject);
	});
}

/** A minimal Chrome DevTools Protocol client over the inspector's WebSocket. */
async function inspector(url) {
	const ws = new WebSocket(url);
	await new Promise((resolve, reject) => {
		ws.once("open", resolve);
		ws.once("error", reject);
	});
	let next = 1;
	const pending = new Map();
	ws.on("message", (data) => {
		const msg = JSON.parse(String(data));
		if (msg.id && pending.has(msg.id)) {
			pending.get(msg.id)(msg);
			pending.delete(msg.id);
		}
	});
	return {
		send(method, params = {}) {
			const id = next++;
			ws.send(JSON.stringify({ id, method, params }));
			return new Promise((resolve) => pending.set(id, resolve));
		},
		close: () => ws.close(),
	};
}

/** Self time per function (name and source file), in ms, from a CPU profile; idle and GC apart. */
function selfTimes(profile) {
	const byId = new Map(profile.nodes.map((n) => [n.id, n]));
	const counts = new Map();
	for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
	const totalUs = profile.endTime - profile.startTime;
	const usPerSample = totalUs / Math.max(1, profile.samples.length);
	const out = new Map();
	let busyUs = 0;
	for (const [id, n] of counts) {
		const node = byId.get(id);
		const name = node.callFrame.functionName || "(anonymous)";
		if (name === "(idle)" || name === "(program)") continue;
		const file = node.callFrame.url.split("/").slice(-2).join("/") || "(native)";
		const key = `${name} ${file}:${node.callFrame.lineNumber + 1}`;
		out.set(key, (out.get(key) ?? 0) + (n * usPerSample) / 1000);
		busyUs += n * usPerSample;
	}
	return { busyMs: busyUs / 1000, functions: [...out.entries()].sort((a, b) => b[1] - a[1]) };
}

/**
 * The runtime's CPU time per request of each route and of the baselines, the profiler off: the least of ROUNDS
 * rounds of CPU_MS each (the least is the one the machine's other tenants disturbed least).
 */
async function runtimeCpu(stack, routes) {
	const pids = workerdPids();
	const rows = [
		{ label: "`/__bench/hello` (baseline)", request: () => ({ path: "/__bench/hello" }) },
		{ label: routes.read.label, request: routes.read.request },
		{
			// A fresh id each time: the object is made, creates its schema, and answers that it holds no job.
			label: "a new job Durable Object, read once (`/__bench/step/job/{new id}`)",
			request: () => ({ path: `/__bench/step/job/job_new${Math.random().toString(36).slice(2)}` }),
		},
		{ label: routes.create.label, request: routes.create.request },
	];
	for (const row of rows) {
		row.ms = Number.POSITIVE_INFINITY;
		for (let round = 0; round < ROUNDS; round++) {
			const before = cpuMsOf(pids);
			const { requests } = await runLoad({
				origin: stack.url,
				request: row.request,
				concurrency: 8,
				durationMs: CPU_MS,
				warmupMs: 0,
			});
			row.ms = Math.min(row.ms, (cpuMsOf(pids) - before) / Math.max(1, requests));
		}
	}
	const hello = rows[0].ms;
	console.log("### The runtime's CPU per request\n");
	console.log("| route | workerd CPU per request (ms) | × hello | hello's / this route's |");
	console.log("|---|---:|---:|---:|");
	for (const row of rows) {
		console.log(
			`| ${row.label} | ${row.ms.toFixed(2)} | ${(row.ms / hello).toFixed(1)} | ${(hello / row.ms).toFixed(3)} |`,
		);
	}
	console.log(
		`\nUser and system time of workerd's processes (/proc), over ${CPU_MS / 1000} s of load per route at 8 connections, ` +
			`the least of ${ROUNDS} rounds, no profiler attached: JavaScript, each Durable Object's SQLite, the local D1 and ` +
			"R2 services and the sockets. Where the runtime's CPU is what limits the rates, as on this machine, a route's " +
			"requests per second against hello's come close to the last column.",
	);
}

async function main() {
	const pod = await startPodEmulator({ token: "bench-pod-token" });
	const inspectorPort = await freePort();
	const stack = await startMiniflareStack({ inMemory: true, inspectorPort });
	try {
		const account = await prepareAccount(stack);
		await putBenchPod(stack, pod);
		const job = await createJob(stack, account, "bench-pod");
		const targets = await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json();
		const target = targets.find((t) => t.title?.includes("reelgate-bench")) ?? targets[0];
		const cdp = await inspector(target.webSocketDebuggerUrl);
		await cdp.send("Profiler.enable");
		await cdp.send("Profiler.setSamplingInterval", { interval: 100 });
		const auth = { authorization: `Bearer ${account.key}` };
		const body = JSON.stringify({
			model: "preview",
			input: { image: account.imageId, prompt: "profile" },
			backend: "bench-pod",
		});
		const routes = {
			read: {
				title: "the status read's",
				label: "`GET /v1/jobs/{id}`",
				request: () => ({ path: `/v1/jobs/${job.id}`, headers: auth }),
			},
			create: {
				title: "job creation's",
				label: "`POST /v1/jobs` (each job then submitted to a pod emulator in the background)",
				request: () => ({
					method: "POST",
					path: "/v1/jobs",
					headers: { ...auth, "content-type": "application/json" },
					body,
				}),
			},
		};
		console.log("## Profile: CPU per request of the status read and of job creation\n");
		for (const name of ROUTES) {
			const { title, label, request } = routes[name];
			// Warm the isolate (JIT, caches) before the profile starts.
			await runLoad({ origin: stack.url, request, concurrency: 8, durationMs: 2_000, warmupMs: 0 });
			await cdp.send("Profiler.start");
			const load = await runLoad({ origin: stack.url, request, concurrency: 8, durationMs: DURATION_MS, warmupMs: 0 });
			const { result } = await cdp.send("Profiler.stop");
			const { busyMs, functions } = selfTimes(result.profile);
			if (SAVE_DIR) {
				await mkdir(SAVE_DIR, { recursive: true });
				await writeFile(path.join(SAVE_DIR, `${name}.cpuprofile`), JSON.stringify(result.profile));
			}
			const { requests } = load;
			console.log(`### ${title[0]?.toUpperCase()}${title.slice(1)} CPU\n`);
			console.log(
				`${requests} requests of ${label} in ${(DURATION_MS / 1000).toFixed(0)} s (8 connections): ` +
					`${busyMs.toFixed(0)} ms of sampled JavaScript CPU in the Worker's isolate (its Durable Objects included), ` +
					`**${(busyMs / Math.max(1, requests)).toFixed(3)} ms per request**.\n`,
			);
			console.log("| function (file:line) | self ms | per request (ms) | share |");
			console.log("|---|---:|---:|---:|");
			for (const [fn, ms] of functions.slice(0, TOP)) {
				console.log(
					`| \`${fn.replaceAll("|", "\\\\|")}\` | ${ms.toFixed(1)} | ${(ms / Math.max(1, requests)).toFixed(4)} | ${((ms / busyMs) * 100).toFixed(1)} % |`,
				);
			}
			console.log("");
		}
		cdp.close();
		console.log(
			"V8's sampling profiler (100 µs interval) through workerd's inspector (miniflare `inspectorPort`), idle and " +
				"`(program)` samples left out; native work outside the isolate (storage, the socket) is not in it. On a " +
				"shared machine the figures move by a few tens of percent from run to run.\n",
		);
		// Last, with the profiler detached: the creation load's garbage would otherwise land in the read's profile.
		await runtimeCpu(stack, routes);
	} finally {
		await stack.dispose();
		await pod.close?.();
	}
}

main().catch((err) => {
	console.error(err);
	process.exit(1);
});
