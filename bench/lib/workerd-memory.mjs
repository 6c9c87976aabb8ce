// The local runtime's memory, for benchmarks that must show a body is streamed: the summed resident set of every
// workerd process below this one (miniflare and wrangler start workerd as a child), read from /proc.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** The pids of every workerd process below this one (found with `ps` once per phase, not per sample). */
export function workerdPids() {
	const out = execFileSync("ps", ["-eo", "pid=,ppid=,comm="], { encoding: "utf8" });
	const procs = out
		.trim()
		.split("\n")
		.map((l) => l.trim().split(/\s+/))
		.map(([pid, ppid, comm]) => ({ pid: Number(pid), ppid: Number(ppid), comm }));
	const mine = new Set([process.pid]);
	for (let changed = true; changed; ) {
		changed = false;
		for (const p of procs) {
			if (mine.has(p.ppid) && !mine.has(p.pid)) {
				mine.add(p.pid);
				changed = true;
			}
		}
	}
	return procs.filter((p) => mine.has(p.pid) && p.comm.includes("workerd")).map((p) => p.pid);
}

/** Their summed resident set in bytes, from /proc (cheap enough to sample every 20 ms without slowing a transfer). */
export function rssOf(pids) {
	let total = 0;
	for (const pid of pids) {
		try {
			const status = readFileSync(`/proc/${pid}/status`, "utf8");
			total += Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
		} catch {
			// Exited.
		}
	}
	return total;
}

/**
 * Samples workerd's memory every 20 ms while a transfer of `size` bytes runs; `progress()` says how many bytes
 * have moved. Keeps the peak of each half of the transfer apart: a streamed body keeps the second half's peak
 * like the first's, a buffered one grows it by about the half's bytes. `stop()` returns
 * `{ idle, peak, growth, secondHalf }` in bytes.
 */
export function sampleWorkerdMemory(size, progress) {
	const pids = workerdPids();
	const idle = rssOf(pids);
	let peak = idle;
	const halves = [idle, idle];
	const sample = () => {
		const rss = rssOf(pids);
		peak = Math.max(peak, rss);
		const half = progress() < size / 2 ? 0 : 1;
		halves[half] = Math.max(halves[half], rss);
	};
	const timer = setInterval(sample, 20);
	return {
		stop() {
			clearInterval(timer);
			sample();
			return { idle, peak, growth: peak - idle, secondHalf: halves[1] - halves[0] };
		},
	};
}
