import { describe, expect, it } from "vitest";
import {
	deadlineAt,
	nextAlarmAt,
	nextPollDelayMs,
	POLL_MAX_MS,
	POLL_MIN_MS,
	pollDelayMs,
	RETRY_MAX_MS,
	retryDelayMs,
} from "../../src/jobs/backoff";
import { parseRetryAfter } from "../../src/lib/retry-after";

describe("poll delay", () => {
	it.each([
		[0, POLL_MIN_MS],
		[5_000, POLL_MIN_MS],
		[60_000, 6_000],
		[200_000, 20_000],
		[3_600_000, POLL_MAX_MS],
		[-5, POLL_MIN_MS],
	])("at age %i ms is %i ms", (age, delay) => {
		expect(pollDelayMs(age)).toBe(delay);
	});

	it("never shrinks as the job ages", () => {
		let last = 0;
		for (let age = 0; age < 600_000; age += 7_000) {
			const d = pollDelayMs(age);
			expect(d).toBeGreaterThanOrEqual(last);
			last = d;
		}
	});
});

describe("retry delay (full jitter)", () => {
	it("spans [floor, base·2^(n-1)] by the random draw", () => {
		expect(retryDelayMs(1, undefined, () => 0)).toBe(100);
		expect(retryDelayMs(1, undefined, () => 1)).toBe(1_000);
		expect(retryDelayMs(3, undefined, () => 1)).toBe(4_000);
		expect(retryDelayMs(3, undefined, () => 0.5)).toBe(2_000);
	});

	it("is capped", () => {
		expect(retryDelayMs(40, undefined, () => 1)).toBe(RETRY_MAX_MS);
	});

	it("takes Retry-After as a floor", () => {
		expect(retryDelayMs(1, 30_000, () => 1)).toBe(30_000);
		expect(retryDelayMs(8, 10, () => 1)).toBe(60_000);
	});
});

describe("Retry-After", () => {
	const now = Date.parse("2026-01-01T00:00:00Z");
	it.each([
		["7", 7_000],
		[" 0 ", 0],
		["Thu, 01 Jan 2026 00:00:30 GMT", 30_000],
		["Wed, 31 Dec 2025 00:00:00 GMT", 0],
		["soon", undefined],
		[null, undefined],
	])("%s → %s", (value, ms) => {
		expect(parseRetryAfter(value, now)).toBe(ms);
	});
});

describe("deadline", () => {
	it("is creation plus JOB_DEADLINE_S, and caps the next alarm", () => {
		const deadline = deadlineAt(1_000, 60);
		expect(deadline).toBe(61_000);
		expect(nextAlarmAt(10_000, 5_000, deadline)).toBe(15_000);
		expect(nextAlarmAt(59_000, 30_000, deadline)).toBe(61_000);
	});
});

describe("poll timing from what the backend says", () => {
	const base = { ageMs: 60_000, webhook: false } as const;

	it("sleeps through most of the time the progress percent says is left", () => {
		// 40 % after 60 s running: 90 s left, polled at 80 % of it.
		expect(nextPollDelayMs({ ...base, runningMs: 60_000, percent: 40 })).toBe(60_000);
		expect(nextPollDelayMs({ ...base, runningMs: 60_000, percent: 80 })).toBe(12_000);
		// With a webhook the fallback may wait longer between polls.
		expect(nextPollDelayMs({ ...base, runningMs: 10_000, percent: 2, webhook: true })).toBe(120_000);
		expect(nextPollDelayMs({ ...base, runningMs: 10_000, percent: 2 })).toBe(60_000);
	});

	it("uses the model's predicted run time while the percent says too little", () => {
		expect(nextPollDelayMs({ ...base, runningMs: 10_000, percent: 1, expectedRunMs: 60_000 })).toBe(40_000);
		expect(nextPollDelayMs({ ...base, runningMs: 10_000, expectedRunMs: 60_000 })).toBe(40_000);
	});

	it("polls every second around the predicted end, then backs off with the overrun", () => {
		expect(nextPollDelayMs({ ...base, runningMs: 59_000, expectedRunMs: 60_000 })).toBe(POLL_MIN_MS);
		expect(nextPollDelayMs({ ...base, runningMs: 100_000, expectedRunMs: 60_000 })).toBe(5_000);
		expect(nextPollDelayMs({ ...base, runningMs: 100_000, expectedRunMs: 60_000, webhook: true })).toBe(20_000);
		expect(nextPollDelayMs({ ...base, runningMs: 10_000_000, expectedRunMs: 60_000 })).toBe(POLL_MAX_MS);
	});

	it("falls back to the age curve without an estimate, at half the rate with a webhook", () => {
		expect(nextPollDelayMs({ ...base, runningMs: null })).toBe(pollDelayMs(60_000));
		expect(nextPollDelayMs({ ...base, runningMs: null, webhook: true })).toBe(2 * pollDelayMs(60_000));
		expect(nextPollDelayMs({ ageMs: 0, runningMs: null, webhook: true })).toBe(2 * POLL_MIN_MS);
		expect(nextPollDelayMs({ ...base, runningMs: 5_000 })).toBe(pollDelayMs(60_000));
	});
});
