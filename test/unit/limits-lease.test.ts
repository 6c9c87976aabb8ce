/**
 * Tokens lent ahead by a key's gate (src/limits/lease.ts), against a gate played by the same token-bucket
 * arithmetic the RateLimiterDO charges with, on an injected clock.
 */
import { describe, expect, it } from "vitest";
import type { Admission } from "../../src/limits/admission";
import { LEASE_MS, LeaseBook, MAX_LEASE_TOKENS, tokensToLend } from "../../src/limits/lease";
import { type BucketPolicy, type BucketState, takeAll } from "../../src/limits/token-bucket";
import type { Scope } from "../../src/schemas/keys";

const MINUTE = 60_000;
const policy = (quota: number): BucketPolicy => ({ quota, windowMs: MINUTE });

/** A key's gate for one `requests` bucket: charges as the object does, and counts its calls. */
class FakeGate {
	calls = 0;
	revoked = false;
	#state: BucketState | null = null;
	readonly #policy: BucketPolicy;
	readonly #clock: { now: number };

	constructor(quota: number, clock: { now: number }) {
		this.#policy = policy(quota);
		this.#clock = clock;
	}

	/** Whole tokens in the bucket now. */
	get tokens(): number {
		return Math.floor(this.#state?.tokens ?? this.#policy.quota);
	}

	async admit(lease: boolean, scopes: Scope[] = ["jobs:read"]): Promise<Admission> {
		this.calls += 1;
		// An answer arrives after a turn of the event loop, as a call to another object does.
		await new Promise((resolve) => setTimeout(resolve, 0));
		if (this.revoked) return { status: "invalid" };
		const lent = lease ? tokensToLend(this.#state, this.#policy, this.#clock.now) : 0;
		const result = takeAll([{ state: this.#state, policy: this.#policy, cost: 1 + lent }], this.#clock.now);
		const bucket = result.buckets[0];
		if (!bucket) throw new Error("one bucket charged");
		this.#state = bucket.next;
		return {
			status: "ok",
			caller: { keyId: "key", accountId: "acct", scopes },
			limits: {} as Extract<Admission, { status: "ok" }>["limits"],
			decision: {
				allowed: result.allowed,
				buckets: [{ name: "requests", quota: bucket.report.quota, remaining: bucket.report.remaining, reset_s: 1 }],
				retry_after_s: result.allowed ? 0 : 1,
				limited_by: result.allowed ? [] : ["requests"],
			},
			touch: false,
			...(result.allowed && lent > 0 ? { lent } : {}),
		};
	}
}

const allowed = (a: Admission) => a.status === "ok" && a.decision?.allowed === true;
const remaining = (a: Admission) => (a.status === "ok" ? a.decision?.buckets[0]?.remaining : undefined);

function setup(quota: number) {
	const clock = { now: 1_000_000 };
	const gate = new FakeGate(quota, clock);
	const book = new LeaseBook(() => clock.now);
	const admit = (scope: Scope = "jobs:read") => book.admit("hash", scope, (lease) => gate.admit(lease));
	return { clock, gate, book, admit };
}

describe("tokens lent by a key's gate", () => {
	it("lends what the bucket refills in a lease, capped, and only above half the quota", () => {
		const now = 0;
		expect(tokensToLend(null, policy(30), now)).toBe(0);
		expect(tokensToLend(null, policy(60), now)).toBe(1);
		expect(tokensToLend(null, policy(1200), now)).toBe((1200 * LEASE_MS) / MINUTE);
		expect(tokensToLend(null, policy(100_000_000), now)).toBe(MAX_LEASE_TOKENS);
		// 621 tokens: 1 + 20 lent leaves 600, half the quota; 620 would leave less.
		expect(tokensToLend({ tokens: 621, updatedMs: now }, policy(1200), now)).toBe(20);
		expect(tokensToLend({ tokens: 620, updatedMs: now }, policy(1200), now)).toBe(0);
	});

	it("admits a busy key with one gate call per lease, its RateLimit figure falling by one per request", async () => {
		const { gate, admit } = setup(1200);
		const seen: (number | undefined)[] = [];
		for (let i = 0; i < 63; i++) {
			const a = await admit();
			expect(allowed(a)).toBe(true);
			seen.push(remaining(a));
		}
		// 20 lent per call: three calls for 63 requests, where each would have cost one.
		expect(gate.calls).toBe(3);
		expect(seen).toEqual(Array.from({ length: 63 }, (_, i) => 1199 - i));
		expect(gate.tokens).toBe(1200 - 63);
	});

	it("lets exactly the quota through a concurrent burst: requests wait for the lease being asked", async () => {
		const { admit } = setup(120);
		const answers = await Promise.all(Array.from({ length: 150 }, () => admit()));
		expect(answers.filter(allowed)).toHaveLength(120);
	});

	it("stops spending a lease when it ends and asks the gate again", async () => {
		const { clock, gate, admit } = setup(1200);
		await admit();
		await admit();
		expect(gate.calls).toBe(1);
		clock.now += LEASE_MS;
		await admit();
		expect(gate.calls).toBe(2);
	});

	it("asks the gate at once after a drop, and does not keep a lease asked for before it", async () => {
		const { gate, book, admit } = setup(1200);
		await admit();
		book.drop(["hash"]);
		gate.revoked = true;
		expect((await admit()).status).toBe("invalid");

		const second = setup(1200);
		const inFlight = second.admit();
		second.book.drop(["hash"]);
		expect(allowed(await inFlight)).toBe(true);
		second.gate.revoked = true;
		expect((await second.admit()).status).toBe("invalid");
	});

	it("leaves a scope the lease's key lacks to the gate", async () => {
		const clock = { now: 0 };
		const gate = new FakeGate(1200, clock);
		const book = new LeaseBook(() => clock.now);
		await book.admit("hash", "jobs:read", (lease) => gate.admit(lease, ["jobs:read"]));
		await book.admit("hash", "jobs:write", (lease) => gate.admit(lease, ["jobs:read"]));
		expect(gate.calls).toBe(2);
	});
});
