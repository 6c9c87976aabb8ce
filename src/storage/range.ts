/**
 * `Range` header parsing (RFC 9110 §14). Pure, so every edge case is a unit test.
 *
 * Choices:
 * - Only the `bytes` unit; anything that is not `bytes=` followed by range-specs is ignored (200 whole), as the
 *   RFC allows for an unknown unit or a header the server cannot parse.
 * - Several ranges: ignored (200 whole). Serving one range would silently drop the rest; a full 200 is always
 *   a correct answer to `Range`, and players never ask for more than one.
 * - A well-formed single range that cannot be served (start past the end, first > last, `-0`, any range of an
 *   empty object) is unsatisfiable: 416 whose `Content-Range` carries only the size.
 */
export type ByteRange =
	/** No usable `Range`: serve the whole object. */
	| { kind: "whole" }
	/** Serve bytes `start`..`end` inclusive. */
	| { kind: "partial"; start: number; end: number }
	/** Answer 416. */
	| { kind: "unsatisfiable" };

const RANGE_HEADER = /^\s*bytes\s*=\s*(.*)$/i;
const SPEC = /^(\d*)\s*-\s*(\d*)$/;

/** Parses `header` against an object of `size` bytes. */
export function parseRange(header: string | null | undefined, size: number): ByteRange {
	if (!header) return { kind: "whole" };
	const match = RANGE_HEADER.exec(header);
	if (!match) return { kind: "whole" };
	const specs = (match[1] ?? "").split(",").map((s) => s.trim());
	if (specs.some((s) => !SPEC.test(s)) || specs.length === 0) return { kind: "whole" };
	if (specs.length > 1) return { kind: "whole" };
	const [, first = "", last = ""] = SPEC.exec(specs[0] ?? "") ?? [];
	if (first === "" && last === "") return { kind: "whole" };
	if (first === "") {
		// Suffix: the last `n` bytes; a suffix longer than the object is the whole object, as a 206.
		const n = Number(last);
		if (n === 0 || size === 0) return { kind: "unsatisfiable" };
		return { kind: "partial", start: Math.max(0, size - n), end: size - 1 };
	}
	const start = Number(first);
	if (start >= size) return { kind: "unsatisfiable" };
	if (last === "") return { kind: "partial", start, end: size - 1 };
	const end = Number(last);
	if (end < start) return { kind: "unsatisfiable" };
	return { kind: "partial", start, end: Math.min(end, size - 1) };
}

/** `Content-Range` for a served range or, without one, for a 416. */
export function contentRange(size: number, range?: { start: number; end: number }): string {
	return range ? `bytes ${range.start}-${range.end}/${size}` : `bytes */${size}`;
}
