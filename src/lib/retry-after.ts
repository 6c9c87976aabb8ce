/** Parses a `Retry-After` header (seconds or HTTP date) into milliseconds; undefined when absent or invalid. */
export function parseRetryAfter(value: string | null, nowMs: number = Date.now()): number | undefined {
	if (!value) return undefined;
	const trimmed = value.trim();
	if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
	const date = Date.parse(trimmed);
	return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}
