import { type JobLogEntry, WORKER_LINES_KEPT, workerEntry } from "../../src/jobs/logs";
import type { ObjectSql } from "../sql";

/**
 * The GPU worker's lines about the job (table `worker_logs`, schema.ts v7), as its status answers carried them:
 * each answer repeats the worker's recent lines, so a line already stored is not stored again. Lines are cleaned
 * (src/jobs/logs.ts) before they are stored, and only the newest `WORKER_LINES_KEPT` are kept.
 */
export class WorkerLogs {
	readonly #sql: ObjectSql;

	constructor(sql: ObjectSql) {
		this.#sql = sql;
	}

	/** Stores the lines not stored yet; returns those (the new entries, oldest first). */
	append(lines: readonly string[]): JobLogEntry[] {
		const added: JobLogEntry[] = [];
		for (const line of lines) {
			const entry = workerEntry(line);
			if (!entry) continue;
			const before = this.#count();
			this.#sql.run("INSERT OR IGNORE INTO worker_logs (at, entry) VALUES (?, ?)", entry.at, JSON.stringify(entry));
			if (this.#count() > before) added.push(entry);
		}
		if (added.length > 0) {
			this.#sql.run("DELETE FROM worker_logs WHERE seq <= (SELECT MAX(seq) FROM worker_logs) - ?", WORKER_LINES_KEPT);
		}
		return added;
	}

	/** The stored lines, oldest first. */
	list(): JobLogEntry[] {
		return this.#sql
			.all<{ entry: string }>("SELECT entry FROM worker_logs ORDER BY at, seq")
			.map((r) => JSON.parse(r.entry) as JobLogEntry);
	}

	#count(): number {
		return this.#sql.one<{ n: number }>("SELECT COUNT(*) AS n FROM worker_logs").n;
	}
}
