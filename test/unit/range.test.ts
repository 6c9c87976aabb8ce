import { describe, expect, it } from "vitest";
import { type ByteRange, contentRange, parseRange } from "../../src/storage/range";

const whole: ByteRange = { kind: "whole" };
const unsatisfiable: ByteRange = { kind: "unsatisfiable" };
const partial = (start: number, end: number): ByteRange => ({ kind: "partial", start, end });

describe("parseRange", () => {
	it.each<[string, string | null, number, ByteRange]>([
		["no header", null, 100, whole],
		["empty header", "", 100, whole],
		["first byte", "bytes=0-0", 100, partial(0, 0)],
		["first two bytes (Safari's probe)", "bytes=0-1", 100, partial(0, 1)],
		["open-ended from 0 (Chrome)", "bytes=0-", 100, partial(0, 99)],
		["open-ended seek", "bytes=40-", 100, partial(40, 99)],
		["last byte", "bytes=99-99", 100, partial(99, 99)],
		["last byte, open-ended", "bytes=99-", 100, partial(99, 99)],
		["end past the size is clamped", "bytes=10-1000", 100, partial(10, 99)],
		["suffix", "bytes=-10", 100, partial(90, 99)],
		["suffix larger than size: all of it", "bytes=-500", 100, partial(0, 99)],
		["unit case and spaces", " Bytes = 5 - 9 ", 100, partial(5, 9)],
		["start at size", "bytes=100-", 100, unsatisfiable],
		["start beyond size", "bytes=500-600", 100, unsatisfiable],
		["reversed", "bytes=9-5", 100, unsatisfiable],
		["zero suffix", "bytes=-0", 100, unsatisfiable],
		["empty object, from 0", "bytes=0-", 0, unsatisfiable],
		["empty object, suffix", "bytes=-5", 0, unsatisfiable],
		["several ranges: whole (documented)", "bytes=0-1,5-9", 100, whole],
		["garbage", "garbage", 100, whole],
		["other unit", "items=0-5", 100, whole],
		["no positions", "bytes=-", 100, whole],
		["letters", "bytes=a-b", 100, whole],
		["negative start", "bytes=--5", 100, whole],
		["trailing comma only", "bytes=0-5,", 100, whole],
		["huge start", "bytes=99999999999999999999-", 100, unsatisfiable],
		["huge end", "bytes=0-99999999999999999999", 100, partial(0, 99)],
	])("%s: %j of %i bytes", (_name, header, size, expected) => {
		expect(parseRange(header, size)).toEqual(expected);
	});
});

describe("contentRange", () => {
	it("writes a served range and a 416's size", () => {
		expect(contentRange(100, { start: 0, end: 9 })).toBe("bytes 0-9/100");
		expect(contentRange(100)).toBe("bytes */100");
	});
});
