/**
 * When keep-warm runs: pure time arithmetic over its configured window (src/config/keep-warm.ts), so the schedule
 * is testable at chosen instants.
 */
import type { KeepWarmConfig } from "../config/keep-warm";

/** The local hour (0..23) at `epochMs` for a UTC offset in minutes. */
export function localHour(epochMs: number, offsetMinutes: number): number {
	const local = new Date(epochMs + offsetMinutes * 60_000);
	return local.getUTCHours();
}

/** Whether `epochMs` falls inside the configured window (start inclusive, end exclusive, wrapping past midnight). */
export function isWithinHours(
	config: Pick<KeepWarmConfig, "startHour" | "endHour" | "offsetMinutes">,
	epochMs: number,
): boolean {
	const h = localHour(epochMs, config.offsetMinutes);
	if (config.startHour < config.endHour) return h >= config.startHour && h < config.endHour;
	return h >= config.startHour || h < config.endHour;
}
