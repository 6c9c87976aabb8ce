// The local runtime's CPU time, for benchmarks that compare what routes cost in all: user plus system time of every
// workerd process below this one, from /proc (Linux). Unlike a V8 profile of the Worker's isolate it includes what
// runs outside JavaScript: SQLite in each Durable Object, the local D1 and R2 services, the sockets.
import { readFileSync } from "node:fs";

const TICKS_PER_MS = 100 / 1000; // USER_HZ is 100 on Linux.

/** The summed CPU time of `pids` so far, in ms (10 ms resolution). */
export function cpuMsOf(pids) {
	let ticks = 0;
	for (const pid of pids) {
		try {
			// Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
			const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
			ticks += Number(fields[11]) + Number(fields[12]);
		} catch {
			// Exited.
		}
	}
	return ticks / TICKS_PER_MS;
}
