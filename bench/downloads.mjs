#!/usr/bin/env node
// Video download throughput and the runtime's peak memory: the real `GET /v1/jobs/{id}/video` (API key, job read,
// `serveObject` streaming the R2 object with its headers) against (a) a bare route in the same Worker that returns
// `env.BUCKET.get(key)`'s body and nothing else, and (b) a plain loopback file transfer (a Node HTTP server
// streaming the same bytes from disk, no workerd), in the same run. 256 MiB and 1 GiB by default
// (BENCH_DOWNLOAD_SIZES, comma-separated bytes, overrides). The Worker is the bench entry (bench/worker/entry.ts)
// served by miniflare's API; memory is the summed resident set of its workerd processes, sampled every 20 ms from
// /proc. Flat means streamed: the second half of a download must not raise the peak by anything like its bytes.
// Prints a markdown section: the table and the ratios.
import { createWriteStream, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { startMiniflareStack } from "./lib/bench-stack.mjs";
import { startFileServer } from "./lib/file-server.mjs";
import { createJob, prepareAccount, putBenchPod, startPodEmulator, waitForJob } from "./lib/fixtures.mjs";
import { sampleWorkerdMemory } from "./lib/workerd-memory.mjs";

const MiB = 1024 * 1024;
const SIZES = (process.env.BENCH_DOWNLOAD_SIZES ?? `${256 * MiB},${1024 * MiB}`)
	.split(",")
	.map(Number)
	.filter((n) => n > 0);

/** Downloads per path and size (BENCH_DOWNLOAD_REPEATS); the fastest one is reported. */
const REPEATS = Number(process.env.BENCH_DOWNLOAD_REPEATS) || 2;

/** Bytes received so far by the download being measured. */
let received = 0;

/** GETs `url` and discards the body, counting it; resolves with the byte count once it has all arrived. */
function download(url, headers = {}) {
	return new Promise((resolve, reject) => {
		http
			.get(url, { headers }, (res) => {
				if (res.statusCode !== 200) {
					res.resume();
					return reject(new Error(`GET ${url}: ${res.statusCode}`));
				}
				res.on("data", (chunk) => {
					received += chunk.length;
				});
				res.on("end", () => resolve(received));
				res.on("error", reject);
			})
			.on("error", reject);
	});
}

/** One download while sampling workerd's memory (`workerd` false: the file server's row, which has none). */
async function measure(name, url, headers, size, workerd = true) {
	await new Promise((r) => setTimeout(r, 500));
	received = 0;
	const memory = workerd ? sampleWorkerdMemory(size, () => received) : undefined;
	const start = performance.now();
	const bytes = await download(url, headers);
	const seconds = (performance.now() - start) / 1000;
	if (bytes !== size) throw new Error(`${name}: got ${bytes} bytes of ${size}`);
	return { name, seconds, mibps: size / MiB / seconds, memory: memory?.stop() };
}

/** A path's row: its fastest run (the one least slowed by other load), with the largest memory figures of all runs. */
function best(runs) {
	const fastest = runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
	if (!fastest.memory) return fastest;
	const most = (field) => Math.max(...runs.map((r) => r.memory[field]));
	return { ...fastest, memory: { idle: fastest.memory.idle, peak: most("peak"), secondHalf: most("secondHalf") } };
}

/**
 * A succeeded job whose video is `size` bytes, made through the real path: the pod emulator, as the GPU worker
 * would, uploads the video to the job's signed output URLs (larger than one signed PUT may carry, through the part
 * URLs of `output.parts_url`: the Worker's `/v1/storage` routes into R2), and the JobDO verifies it and marks the job
 * succeeded.
 */
async function bigVideoJob(stack, account, size) {
	const job = await createJob(stack, account, "bench-pod", `bench download #emu:size=${size}`);
	const succeeded = (j) => {
		// A resubmission would build a second video in the emulator: stop rather than run the machine out of memory.
		if (j.attempts > 1) throw new Error(`job ${job.id} was resubmitted (${j.attempts} attempts)`);
		return j.status === "succeeded";
	};
	const done = await waitForJob(stack, account, job.id, succeeded, {
		everyMs: 500,
		timeoutMs: 15 * 60_000,
	});
	if (done.output?.video?.size !== size) throw new Error(`job ${job.id}: video of ${done.output?.video?.size} bytes`);
	return job.id;
}

async function main() {
	const dir = mkdtempSync(path.join(tmpdir(), "reelgate-bench-downloads-"));
	// Clock mode: the emulated worker writes the video on its own time, and `/status` only reports, as a real one.
	const pod = await startPodEmulator({ token: "bench-pod-token", transfers: "direct", tickMs: 250 });
	const stack = await startMiniflareStack();
	const sections = [];
	try {
		const account = await prepareAccount(stack);
		// The emulator builds the whole video in memory while answering `/run` (about 20 s for 1 GiB on a busy machine):
		// with the default timeout the JobDO would give up and resubmit, and each resubmission builds another one.
		await putBenchPod(stack, pod, { timeout_ms: 120_000 });
		for (const size of SIZES) {
			const jobId = await bigVideoJob(stack, account, size);
			// The bare route takes the object key itself, so it does nothing but read R2: the key is asked once here.
			const key = await (await fetch(`${stack.url}/__bench/video-key/${jobId}`)).text();
			const bare = `${stack.url}/__bench/objects/${key}`;
			const file = path.join(dir, `${jobId}.mp4`);
			// The file baseline's bytes are the video itself, fetched once through the bare route (which also warms
			// the local R2's files in the page cache for the rows after it).
			await pipeline(await new Promise((resolve) => http.get(bare, resolve)), createWriteStream(file));
			const server = await startFileServer(file);
			const paths = [
				["Loopback file transfer (Node, no workerd)", server.url, {}, false],
				["Bare route: `env.BUCKET.get(key)` body", bare, {}, true],
				[
					"`GET /v1/jobs/{id}/video`",
					`${stack.url}/v1/jobs/${jobId}/video`,
					{ authorization: `Bearer ${account.key}` },
					true,
				],
			];
			const runs = paths.map(() => []);
			try {
				// Rounds interleave the three paths, so a burst of other load on the machine hits them alike.
				for (let round = 0; round < REPEATS; round++) {
					for (const [i, [name, url, headers, workerd]] of paths.entries()) {
						runs[i].push(await measure(name, url, headers, size, workerd));
					}
				}
			} finally {
				await server.close();
			}
			const rows = runs.map(best);
			rmSync(file, { force: true });
			sections.push({ size, rows });
		}
	} finally {
		await stack.dispose();
		await pod.close();
		rmSync(dir, { recursive: true, force: true });
	}

	const fmt = (b) => `${(b / MiB).toFixed(0)} MiB`;
	const lines = [
		"## Downloads: the video route vs a bare R2 route and a loopback file transfer",
		"",
		"| Size | Path | Time | Throughput | workerd RSS idle | workerd RSS peak | Growth in 2nd half |",
		"|---|---|---|---|---|---|---|",
	];
	const verdicts = [];
	for (const { size, rows } of sections) {
		for (const r of rows) {
			const m = r.memory;
			lines.push(
				`| ${fmt(size)} | ${r.name} | ${r.seconds.toFixed(2)} s | ${r.mibps.toFixed(0)} MiB/s | ${m ? fmt(m.idle) : "—"} | ${m ? fmt(m.peak) : "—"} | ${m ? fmt(m.secondHalf) : "—"} |`,
			);
		}
		const [file, bare, api] = rows;
		verdicts.push(
			`${fmt(size)}: throughput API / bare route ${(api.mibps / bare.mibps).toFixed(2)}×, API / file transfer ${(api.mibps / file.mibps).toFixed(2)}×, ` +
				`peak RSS API / bare ${(api.memory.peak / bare.memory.peak).toFixed(2)}×; memory flat: ${api.memory.secondHalf < size / 8 ? "yes" : "NO"} ` +
				`(the second half, ${fmt(size / 2)}, moved the peak by ${fmt(api.memory.secondHalf)}).`,
		);
	}
	lines.push(
		"",
		"Ratios:",
		...verdicts.map((v) => `- ${v}`),
		"",
		"Each video comes from a real job: the pod emulator (test/emulators/pod/server.ts, `#emu:size=N`) uploads it as a GPU " +
			"worker would, through the part URLs its job's `output.parts_url` answers (the Worker-signed PUT carries at most 64 MiB), " +
			"and the JobDO verifies size and sha256 before `succeeded`; the download " +
			`rows then read that same R2 object. Each path downloaded ${REPEATS} times in interleaved rounds with a Node HTTP client on ` +
			"loopback, the body counted and discarded; the table shows the fastest run and the highest memory figures of all runs. " +
			"workerd RSS (summed over miniflare's workerd processes, local R2 simulator included) sampled every 20 ms.",
	);
	console.log(lines.join("\n"));
}

main().catch((err) => {
	console.error(err);
	process.exit(1);
});
