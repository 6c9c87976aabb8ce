import { describe, expect, it } from "vitest";
import { KeepWarmConfigError, parseKeepWarmConfig, parseOffset } from "../../src/config/keep-warm";
import { isWithinHours, localHour } from "../../src/ops/schedule";

const at = (iso: string) => Date.parse(iso);

describe("keep-warm schedule", () => {
	it("runs 8-20 local time at UTC+2", () => {
		const c = parseKeepWarmConfig({
			KEEP_WARM_BACKENDS: "rp, pod,rp",
			KEEP_WARM_HOURS: "8-20",
			KEEP_WARM_TZ_OFFSET: "+2",
		});
		expect(c.backends).toEqual(["rp", "pod"]);
		expect(isWithinHours(c, at("2026-11-23T05:59:00Z"))).toBe(false); // 07:59 local
		expect(isWithinHours(c, at("2026-11-23T06:00:00Z"))).toBe(true); // 08:00 local
		expect(isWithinHours(c, at("2026-11-23T17:59:00Z"))).toBe(true); // 19:59 local
		expect(isWithinHours(c, at("2026-11-23T18:00:00Z"))).toBe(false); // 20:00 local
	});

	it("wraps past midnight and reads offsets", () => {
		const c = parseKeepWarmConfig({ KEEP_WARM_BACKENDS: "x", KEEP_WARM_HOURS: "22-6", KEEP_WARM_TZ_OFFSET: "-05:00" });
		expect(isWithinHours(c, at("2026-11-23T03:30:00Z"))).toBe(true); // 22:30 local
		expect(isWithinHours(c, at("2026-11-23T10:59:00Z"))).toBe(true); // 05:59 local
		expect(isWithinHours(c, at("2026-11-23T11:00:00Z"))).toBe(false); // 06:00 local
		expect(parseOffset("5.5")).toBe(330);
		expect(localHour(at("2026-11-23T23:30:00Z"), 60)).toBe(0);
		expect(isWithinHours(parseKeepWarmConfig({}), at("2026-11-23T03:00:00Z"))).toBe(true); // all day
	});

	it("refuses malformed settings", () => {
		expect(() => parseKeepWarmConfig({ KEEP_WARM_HOURS: "8to20" })).toThrow(KeepWarmConfigError);
		expect(() => parseKeepWarmConfig({ KEEP_WARM_HOURS: "8-8" })).toThrow(KeepWarmConfigError);
		expect(() => parseKeepWarmConfig({ KEEP_WARM_TZ_OFFSET: "CET" })).toThrow(KeepWarmConfigError);
	});
});
