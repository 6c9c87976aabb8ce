/** The vast.ai lifecycle's pure rules: the deletion backoff, the bounded wait for capacity, the filters in words. */
import { describe, expect, it } from "vitest";
import {
	deletionBackoffMs,
	describeFilters,
	noOfferSince,
	type VastSettings,
	type VastWaitNote,
} from "../../src/backends/vastai-fleet";

const settings = {
	minGpuRamGb: 24,
	maxDph: 0.5,
	minReliability: 0.99,
	gpuNames: ["RTX 4090", "RTX 3090"],
	capacityWaitS: 120,
} as VastSettings;

const note = (patch: Partial<VastWaitNote>): VastWaitNote => ({
	reason: "booting",
	message: "Waiting for a vast.ai offer",
	since: "2026-01-01T00:00:00.000Z",
	no_offer_since: null,
	...patch,
});

describe("vast.ai lifecycle rules", () => {
	it("retries a refused deletion after 30 s, doubling up to 10 min", () => {
		expect([1, 2, 3, 4, 5, 6, 7].map(deletionBackoffMs)).toEqual([
			30_000, 60_000, 120_000, 240_000, 480_000, 600_000, 600_000,
		]);
	});

	it("counts the wait for capacity from the first empty search, and starts it over after a quiet spell", () => {
		const t0 = 1_000_000;
		expect(noOfferSince(null, settings, t0)).toBeNull();
		expect(noOfferSince(note({ no_offer_since: null }), settings, t0)).toBeNull();
		// Searched a minute ago, empty since t0 − 100 s: the wait goes on.
		expect(noOfferSince(note({ no_offer_since: t0 - 100_000, checked_at: t0 - 60_000 }), settings, t0)).toBe(
			t0 - 100_000,
		);
		// Nobody searched for longer than the wait itself: what the market did meanwhile is unknown.
		expect(noOfferSince(note({ no_offer_since: t0 - 500_000, checked_at: t0 - 121_000 }), settings, t0)).toBeNull();
		// A short wait still keeps a minute of memory.
		const short = { ...settings, capacityWaitS: 0 };
		expect(noOfferSince(note({ no_offer_since: t0 - 30_000, checked_at: t0 - 30_000 }), short, t0)).toBe(t0 - 30_000);
	});

	it("names the filters in words", () => {
		expect(describeFilters(settings)).toBe(
			"VRAM >= 24 GB, price <= $0.5/h, reliability >= 0.99, GPU in RTX 4090 | RTX 3090",
		);
	});
});
