/**
 * vast.ai rentals (migration 0010): when each instance started billing, was first ready and stopped, at what hourly
 * price. The BackendDO writes them as its instance changes; the admin usage report reads what a window was billed.
 */
import { all, run } from "./sql";

export async function rentalStarted(
	db: D1Database,
	r: { backend: string; instance: number; dphUsd: number; at: string },
): Promise<void> {
	await run(
		db,
		`INSERT INTO vast_rentals (backend_name, instance_id, dph_usd, started_at) VALUES (?, ?, ?, ?)
		 ON CONFLICT (backend_name, instance_id) DO NOTHING`,
		r.backend,
		r.instance,
		r.dphUsd,
		r.at,
	);
}

export async function rentalReady(db: D1Database, backend: string, instance: number, at: string): Promise<void> {
	await run(
		db,
		"UPDATE vast_rentals SET ready_at = ? WHERE backend_name = ? AND instance_id = ? AND ready_at IS NULL",
		at,
		backend,
		instance,
	);
}

export async function rentalEnded(
	db: D1Database,
	backend: string,
	instance: number,
	at: string,
	reason: string,
): Promise<void> {
	await run(
		db,
		"UPDATE vast_rentals SET ended_at = ?, end_reason = ? WHERE backend_name = ? AND instance_id = ? AND ended_at IS NULL",
		at,
		reason,
		backend,
		instance,
	);
}

/** What vast.ai billed each backend within [from, to): rental and boot seconds inside the window, and dollars. */
export interface RentalUsage {
	backend_name: string;
	instances: number;
	billed_seconds: number;
	boot_seconds: number;
	billed_usd: number;
}

/**
 * Rentals overlapping [from, to), clipped to it (a running one counts up to `now`). Times are ISO strings in UTC,
 * so SQLite's julianday reads them.
 */
export function rentalUsage(db: D1Database, from: string, to: string, now: string): Promise<RentalUsage[]> {
	const end = "MIN(COALESCE(ended_at, ?3), ?2)";
	const bootEnd = "MIN(COALESCE(ready_at, ended_at, ?3), ?2)";
	const begin = "MAX(started_at, ?1)";
	const secs = (a: string, b: string) => `MAX(0, (julianday(${b}) - julianday(${a})) * 86400.0)`;
	return all<RentalUsage>(
		db,
		`SELECT backend_name, COUNT(*) AS instances,
		        SUM(${secs(begin, end)}) AS billed_seconds,
		        SUM(${secs(begin, bootEnd)}) AS boot_seconds,
		        SUM(${secs(begin, end)} * dph_usd / 3600.0) AS billed_usd
		   FROM vast_rentals
		  WHERE started_at < ?2 AND COALESCE(ended_at, ?3) > ?1
		  GROUP BY backend_name ORDER BY backend_name`,
		from,
		to,
		now,
	);
}
