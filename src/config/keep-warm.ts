/**
 * The keep-warm settings (`KEEP_WARM_BACKENDS`, `KEEP_WARM_HOURS`, `KEEP_WARM_TZ_OFFSET`; docs/operations.md).
 * Hours are local to `KEEP_WARM_TZ_OFFSET` (a fixed UTC offset: the Workers runtime has no time-zone database
 * that a cron can rely on, and an explicit offset says exactly what it means).
 */

export interface KeepWarmConfig {
	/** Backend names to keep warm; empty: keep-warm is off. */
	backends: string[];
	/** Local hour the window opens (0..23, inclusive). */
	startHour: number;
	/** Local hour the window closes (1..24, exclusive); below `startHour` the window wraps past midnight. */
	endHour: number;
	/** Offset from UTC in minutes (e.g. +120 for UTC+2). */
	offsetMinutes: number;
}

export class KeepWarmConfigError extends Error {
	override name = "KeepWarmConfigError";
}

/** "8-20" → [8, 20]; "" → all day. */
export function parseHours(value: string | undefined): [number, number] {
	const text = (value ?? "").trim();
	if (text === "") return [0, 24];
	const m = /^(\d{1,2})\s*-\s*(\d{1,2})$/.exec(text);
	if (!m) throw new KeepWarmConfigError(`KEEP_WARM_HOURS must look like "8-20", got "${text}".`);
	const start = Number(m[1]);
	const end = Number(m[2]);
	if (start > 23 || end > 24 || end === 0 || start === end) {
		throw new KeepWarmConfigError(`KEEP_WARM_HOURS "${text}": hours are 0-23 to 1-24 and must differ.`);
	}
	return [start, end];
}

/** "+2", "-5", "5.5", "+05:30", "" → minutes east of UTC. */
export function parseOffset(value: string | undefined): number {
	const text = (value ?? "").trim();
	if (text === "") return 0;
	const hm = /^([+-])?(\d{1,2}):(\d{2})$/.exec(text);
	if (hm) {
		const minutes = Number(hm[2]) * 60 + Number(hm[3]);
		return hm[1] === "-" ? -minutes : minutes;
	}
	const hours = Number(text);
	if (!Number.isFinite(hours) || Math.abs(hours) > 14) {
		throw new KeepWarmConfigError(`KEEP_WARM_TZ_OFFSET must be hours from UTC ("+2", "-5", "+05:30"), got "${text}".`);
	}
	return Math.round(hours * 60);
}

/** Reads the keep-warm vars; throws KeepWarmConfigError on a malformed value. */
export function parseKeepWarmConfig(vars: {
	KEEP_WARM_BACKENDS?: string;
	KEEP_WARM_HOURS?: string;
	KEEP_WARM_TZ_OFFSET?: string;
}): KeepWarmConfig {
	const backends = (vars.KEEP_WARM_BACKENDS ?? "")
		.split(",")
		.map((s) => s.trim())
		.filter(Boolean);
	const [startHour, endHour] = parseHours(vars.KEEP_WARM_HOURS);
	return { backends: [...new Set(backends)], startHour, endHour, offsetMinutes: parseOffset(vars.KEEP_WARM_TZ_OFFSET) };
}
