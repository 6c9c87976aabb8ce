import { describe, expect, it } from "vitest";
import { ConfigSchema, configOf } from "../../src/config";
import { effectiveLimits, NO_OVERRIDES, utcMonth } from "../../src/limits/config";
import { rateLimitHeaders } from "../../src/limits/headers";
import { type BucketPolicy, type BucketState, refill, type TakeResult, takeAll } from "../../src/limits/token-bucket";

const MINUTE = 60_000;
const policy = (quota: number): BucketPolicy => ({ quota, windowMs: MINUTE });
type One = TakeResult<{ state: BucketState | null; policy: BucketPolicy }>;

/** Charges one bucket `n` times at `at`, carrying the state along; returns how many passed and the last result. */
function drain(state: BucketState | null, p: BucketPolicy, n: number, at: number) {
	let passed = 0;
	let last: One | undefined;
	for (let i = 0; i < n; i++) {
		last = takeAll([{ state, policy: p }], at);
		state = last.buckets[0]?.next ?? null;
		if (last.allowed) passed++;
	}
	if (!last) throw new Error("n must be positive");
	return { passed, state, last };
}

describe("token bucket", () => {
	it("starts full: a burst of the whole quota passes, the next is refused", () => {
		const { passed, last } = drain(null, policy(5), 8, 0);
		expect(passed).toBe(5);
		expect(last.allowed).toBe(false);
		expect(last.buckets[0]?.report).toEqual({ quota: 5, remaining: 0, resetMs: 12_000 });
		expect(last.retryAfterMs).toBe(12_000);
	});

	it("refills one token per window/quota, never above the quota", () => {
		const { state } = drain(null, policy(6), 6, 1_000);
		if (!state) throw new Error("no state");
		expect(takeAll([{ state, policy: policy(6) }], 1_000 + 9_999).allowed).toBe(false);
		const after = takeAll([{ state, policy: policy(6) }], 1_000 + 10_000);
		expect(after.allowed).toBe(true);
		expect(after.buckets[0]?.report.remaining).toBe(0);
		expect(refill(state, policy(6), 1_000 + 10 * MINUTE).tokens).toBe(6);
	});

	it("reports remaining tokens and the time until the bucket is full again", () => {
		const first = takeAll([{ state: null, policy: policy(60) }], 0);
		expect(first.buckets[0]?.report).toEqual({ quota: 60, remaining: 59, resetMs: 1_000 });
		const half = refill({ tokens: 30, updatedMs: 0 }, policy(60), 15_000);
		expect(half.tokens).toBe(45);
	});

	it("caps the tokens at once when the quota is lowered, and adds nothing when the clock steps back", () => {
		expect(refill({ tokens: 100, updatedMs: 0 }, policy(10), 0).tokens).toBe(10);
		expect(refill({ tokens: 2, updatedMs: 5_000 }, policy(10), 1_000)).toEqual({ tokens: 2, updatedMs: 5_000 });
	});

	it("charges every bucket or none: an empty second bucket leaves the first untouched", () => {
		const requests = { name: "requests", state: { tokens: 3, updatedMs: 0 }, policy: policy(60) };
		const jobs = { name: "jobs", state: { tokens: 0.5, updatedMs: 0 }, policy: policy(2) };
		const refused = takeAll([requests, jobs], 0);
		expect(refused.allowed).toBe(false);
		expect(refused.refused.map((b) => b.name)).toEqual(["jobs"]);
		expect(refused.buckets.map((b) => b.next.tokens)).toEqual([3, 0.5]);
		// Half a token at 2 per minute: 15 s.
		expect(refused.retryAfterMs).toBe(15_000);
		const later = takeAll([requests, jobs], 15_000);
		expect(later.allowed).toBe(true);
		expect(later.buckets.map((b) => b.report.remaining)).toEqual([17, 0]);
	});

	it("counts exactly over many refills (no float drift)", () => {
		// 7 per minute for an hour, one request every 60/7 s: all pass, and the bucket stays full but one.
		let state: BucketState | null = null;
		let passed = 0;
		for (let i = 0; i < 420; i++) {
			const r: One = takeAll([{ state, policy: policy(7) }], Math.round((i * MINUTE) / 7));
			state = r.buckets[0]?.next ?? null;
			if (r.allowed) passed++;
		}
		expect(passed).toBe(420);
		expect(state && Math.floor(state.tokens + 1e-9)).toBe(6);
	});
});

describe("limits configuration", () => {
	it("reads the defaults from vars, refusing nonsense by name, with an empty cap meaning none", () => {
		const limits = (vars: Record<string, string>) => ConfigSchema.parse(vars).limits;
		expect(limits({ RATE_LIMIT_REQUESTS_PER_MINUTE: "30", MONTHLY_SPEND_CAP_USD: "" })).toEqual({
			requests_per_minute: 30,
			jobs_per_minute: 120,
			max_concurrent_jobs: 50,
			monthly_spend_cap_usd: null,
		});
		expect(limits({ MONTHLY_SPEND_CAP_USD: "12.5" }).monthly_spend_cap_usd).toBe(12.5);
		expect(() => configOf({ RATE_LIMIT_JOBS_PER_MINUTE: "abc", MAX_CONCURRENT_JOBS: "-1" } as unknown as Env)).toThrow(
			/RATE_LIMIT_JOBS_PER_MINUTE must be a whole number from 1 .*MAX_CONCURRENT_JOBS must be a whole number from 1 /,
		);
	});

	it("prefers the account's own value and says where each came from", () => {
		const defaults = ConfigSchema.parse({}).limits;
		const limits = effectiveLimits({ ...NO_OVERRIDES, jobs_per_minute: 3, monthly_spend_cap_usd: 0 }, defaults);
		expect(limits).toEqual({
			requests_per_minute: { value: 1200, source: "default" },
			jobs_per_minute: { value: 3, source: "account" },
			max_concurrent_jobs: { value: 50, source: "default" },
			monthly_spend_cap_usd: { value: 0, source: "account" },
		});
	});

	it("bounds the UTC calendar month, across a year end", () => {
		expect(utcMonth(new Date("2026-12-31T23:59:59.999Z"))).toEqual({
			month: "2026-12",
			from: "2026-12-01T00:00:00.000Z",
			to: "2027-01-01T00:00:00.000Z",
		});
	});

	it("writes the draft RateLimit fields, one member per bucket, and Retry-After on refusals", () => {
		const headers = rateLimitHeaders({
			allowed: false,
			buckets: [
				{ name: "requests", quota: 1200, remaining: 1100, reset_s: 5 },
				{ name: "jobs", quota: 2, remaining: 0, reset_s: 17 },
			],
			retry_after_s: 17,
			limited_by: ["jobs"],
		});
		expect(headers).toEqual({
			"ratelimit-policy": '"requests";q=1200;w=60, "jobs";q=2;w=60',
			ratelimit: '"requests";r=1100;t=5, "jobs";r=0;t=17',
			"retry-after": "17",
		});
	});
});
