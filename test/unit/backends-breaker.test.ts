import { describe, expect, it } from "vitest";
import { admit, COOLDOWN_MS, closedBreaker, FAILURE_THRESHOLD, record } from "../../src/backends/breaker";

describe("circuit breaker", () => {
	it("opens after consecutive failures; a success in between resets the count", () => {
		let b = closedBreaker();
		for (let i = 1; i < FAILURE_THRESHOLD; i++) b = record(b, false, 1000);
		expect(b.state).toBe("closed");
		expect(record(record(b, true, 1000), false, 1000).state).toBe("closed");
		b = record(b, false, 1000);
		expect(b).toMatchObject({ state: "open", opened_at: 1000 });
		expect(admit(b, 1000 + COOLDOWN_MS - 1)).toEqual({ allow: false, retryAtMs: 1000 + COOLDOWN_MS });
	});

	it("lets one probe through after the cooldown; its outcome closes or re-opens the circuit", () => {
		let b = closedBreaker();
		for (let i = 0; i < FAILURE_THRESHOLD; i++) b = record(b, false, 0);
		const probe = admit(b, COOLDOWN_MS);
		expect(probe).toMatchObject({ allow: true, probe: true, breaker: { state: "half_open", probe_at: COOLDOWN_MS } });
		if (!probe.allow) throw new Error("unreachable");
		expect(admit(probe.breaker, COOLDOWN_MS + 1).allow).toBe(false);
		expect(record(probe.breaker, true, COOLDOWN_MS + 5).state).toBe("closed");
		const reopened = record(probe.breaker, false, COOLDOWN_MS + 5);
		expect(reopened).toMatchObject({ state: "open", opened_at: COOLDOWN_MS + 5 });
	});

	it("keeps a refusal of every job with the failure that brought it, until the next failure or a success", () => {
		const refusal = { message: "RunPod refused the API key (HTTP 401).", code: "backend_misconfigured" };
		let b = closedBreaker();
		for (let i = 0; i < FAILURE_THRESHOLD; i++) b = record(b, false, 0, refusal);
		expect(b).toMatchObject({ state: "open", refusal });
		expect(record(b, false, 1).refusal).toBeUndefined();
		expect(record(b, true, 1).refusal).toBeUndefined();
		const probe = admit(b, COOLDOWN_MS);
		if (!probe.allow) throw new Error("the cooldown passed");
		expect(record(probe.breaker, false, COOLDOWN_MS, refusal)).toMatchObject({ state: "open", refusal });
	});

	it("replaces a probe that never reported after a cooldown", () => {
		const stuck = { state: "half_open" as const, failures: 3, opened_at: 0, probe_at: 100 };
		expect(admit(stuck, 100 + COOLDOWN_MS)).toMatchObject({ allow: true, probe: true });
	});
});
