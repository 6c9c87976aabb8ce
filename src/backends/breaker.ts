/**
 * A circuit breaker per backend, as pure functions over a small record (the BackendDO stores it): `closed` lets
 * every job through; after `FAILURE_THRESHOLD` consecutive failures it turns `open` and refuses jobs for
 * `COOLDOWN_MS`; then `half_open` lets one probe through, whose outcome closes or re-opens it.
 */

export const FAILURE_THRESHOLD = 3;
export const COOLDOWN_MS = 30_000;

export type BreakerState = "closed" | "open" | "half_open";

export interface Breaker {
	state: BreakerState;
	/** Consecutive failures while closed (or the failed probe). */
	failures: number;
	/** When it last opened (epoch ms); null when closed. */
	opened_at: number | null;
	/** When the half-open probe was let through; null when none is out. */
	probe_at: number | null;
	/**
	 * The last failure, when it said the backend refuses every job (its key, its endpoint): while the breaker is
	 * not closed, a waiting job meets this refusal at once instead of waiting for a probe to meet it again.
	 */
	refusal?: { message: string; code?: string };
}

export function closedBreaker(): Breaker {
	return { state: "closed", failures: 0, opened_at: null, probe_at: null };
}

export type BreakerDecision = { allow: true; breaker: Breaker; probe: boolean } | { allow: false; retryAtMs: number };

/**
 * May a job be sent now? Moving from `open` to `half_open` happens here, when the cooldown has passed; the caller
 * saves the returned breaker. A probe that never reports back (its job died) is replaced after a cooldown.
 */
export function admit(b: Breaker, now: number): BreakerDecision {
	if (b.state === "closed") return { allow: true, breaker: b, probe: false };
	const since = b.state === "open" ? (b.opened_at ?? 0) : (b.probe_at ?? 0);
	if (b.state === "half_open" && b.probe_at === null) {
		return { allow: true, breaker: { ...b, probe_at: now }, probe: true };
	}
	if (now < since + COOLDOWN_MS) return { allow: false, retryAtMs: since + COOLDOWN_MS };
	return { allow: true, breaker: { ...b, state: "half_open", probe_at: now }, probe: true };
}

/**
 * Records the outcome of a call to the backend; `refusal` when the failure said the backend refuses every job
 * (kept until the next failure or success).
 */
export function record(b: Breaker, ok: boolean, now: number, refusal?: Breaker["refusal"]): Breaker {
	if (ok) return closedBreaker();
	const failed = refusal ? { refusal } : {};
	if (b.state === "half_open") {
		return { state: "open", failures: b.failures + 1, opened_at: now, probe_at: null, ...failed };
	}
	const failures = b.failures + 1;
	if (b.state === "closed" && failures < FAILURE_THRESHOLD) return { ...closedBreaker(), failures, ...failed };
	return {
		state: "open",
		failures,
		opened_at: b.state === "open" ? (b.opened_at ?? now) : now,
		probe_at: null,
		...failed,
	};
}
