/**
 * A job's parameters checked against its model's parameter schema (manifest.ts): types, ranges, enumerations,
 * defaults (literal, random, or measured from an input file), derived values and cross-field rules. Pure: the
 * caller turns the field errors into the 400 problem. Every error names the field (`input.<name>`) and the rule.
 */
import type { DerivedSpec, MediaKind, ModelManifest, ParameterSpec } from "./manifest";

export type ParamValue = string | number | boolean;

export interface FieldIssue {
	/** The field of the request body, `input.<name>`. */
	field: string;
	message: string;
}

/** What was measured of the job's input files when they were verified (media-info.ts). */
export type InputMeasures = Partial<Record<MediaKind, { duration_s?: number }>>;

export interface ResolvedParams {
	/** Every parameter with a value: the client's, else its default. */
	values: Record<string, ParamValue>;
	/** The derived values, by name. */
	derived: Record<string, number>;
}

export type ParamsResult = { ok: true; params: ResolvedParams } | { ok: false; issues: FieldIssue[] };

/** The largest integer a JSON number carries exactly: a seed's ceiling. */
const MAX_EXACT = 2 ** 53 - 1;

export function parseResolution(value: string): { width: number; height: number } | null {
	const m = /^(\d{1,5})x(\d{1,5})$/.exec(value);
	return m ? { width: Number(m[1]), height: Number(m[2]) } : null;
}

/** The rule a parameter states, in words: what the problem's message says after the field name. */
export function describeRule(p: ParameterSpec): string {
	switch (p.type) {
		case "string":
			return p.min_length
				? `a string of ${p.min_length} to ${p.max_length} characters`
				: `a string of at most ${p.max_length} characters`;
		case "integer":
			return `an integer from ${p.minimum} to ${p.maximum}${p.multiple_of ? `, a multiple of ${p.multiple_of}` : ""}`;
		case "number":
			return `a number from ${p.minimum} to ${p.maximum}`;
		case "boolean":
			return "true or false";
		case "enum":
			return `one of ${p.values.map((v) => JSON.stringify(v)).join(", ")}`;
		case "resolution":
			return (
				`WIDTHxHEIGHT, each side a multiple of ${p.multiple_of} from ${p.min_side} to ${p.max_side}` +
				(p.max_pixels ? `, at most ${p.max_pixels} pixels` : "")
			);
	}
}

/** One value against its parameter: the value to keep, or why not. */
function checkValue(p: ParameterSpec, v: unknown): { ok: true; value: ParamValue } | { ok: false } {
	const fail = { ok: false } as const;
	switch (p.type) {
		case "string":
			if (typeof v !== "string" || v.length > p.max_length || v.length < (p.min_length ?? 0)) return fail;
			return { ok: true, value: v };
		case "integer":
			if (typeof v !== "number" || !Number.isSafeInteger(v) || v < p.minimum || v > p.maximum) return fail;
			if (p.multiple_of && v % p.multiple_of !== 0) return fail;
			return { ok: true, value: v };
		case "number":
			if (typeof v !== "number" || !Number.isFinite(v) || v < p.minimum || v > p.maximum) return fail;
			return { ok: true, value: v };
		case "boolean":
			return typeof v === "boolean" ? { ok: true, value: v } : fail;
		case "enum":
			return (typeof v === "string" || typeof v === "number") && p.values.includes(v) ? { ok: true, value: v } : fail;
		case "resolution": {
			const r = typeof v === "string" ? parseResolution(v) : null;
			if (!r) return fail;
			const sides = [r.width, r.height].every((s) => s >= p.min_side && s <= p.max_side && s % p.multiple_of === 0);
			if (!sides || (p.max_pixels !== undefined && r.width * r.height > p.max_pixels)) return fail;
			return { ok: true, value: `${r.width}x${r.height}` };
		}
	}
}

/** The length measured of the input file a parameter's default comes from, when it has one. */
function measuredFor(p: ParameterSpec, measures: InputMeasures): number | undefined {
	if ((p.type !== "integer" && p.type !== "number") || !p.default_from) return undefined;
	const measured = measures[p.default_from.input]?.[p.default_from.measure];
	return measured !== undefined && Number.isFinite(measured) && measured > 0 ? measured : undefined;
}

/**
 * The default of a parameter the client left out, or undefined when it has none (it stays unset). A measured
 * default below the minimum is raised to it (an audio shorter than the shortest video: the video runs on past the
 * audio's end); one above the maximum never reaches here, it is refused (resolveParams).
 */
function defaultOf(p: ParameterSpec, measures: InputMeasures, random: () => number): ParamValue | undefined {
	const measured = measuredFor(p, measures);
	if (measured !== undefined && (p.type === "integer" || p.type === "number")) {
		const raised = Math.max(p.minimum, measured);
		return p.type === "integer" ? Math.round(raised) : raised;
	}
	if (p.type === "integer" && p.random_default && p.default === undefined) {
		const hi = Math.min(p.maximum, MAX_EXACT);
		return p.minimum + Math.floor(random() * (hi - p.minimum + 1));
	}
	return p.default;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

function round(x: number, how: "floor" | "ceil" | "nearest"): number {
	return how === "floor" ? Math.floor(x) : how === "ceil" ? Math.ceil(x) : Math.round(x);
}

/** The value of a derived rule from the values it reads. */
export function deriveValue(d: DerivedSpec, get: (name: string) => number): number {
	switch (d.rule) {
		case "frames": {
			const frames = Math.max(1, Math.round(get(d.duration) * get(d.fps)));
			return d.step > 1 ? Math.max(1, Math.round((frames - 1) / d.step)) * d.step + 1 : frames;
		}
		case "scale":
			return round(get(d.of) * d.factor, d.round);
		case "chunks":
			return Math.ceil(get(d.of) / d.size);
	}
}

/** The parameters a derived value reads, directly or through other derived values. */
function sourcesOf(m: ModelManifest, name: string): string[] {
	const d = m.derived[name];
	if (!d) return m.parameters[name] ? [name] : [];
	const refs = d.rule === "frames" ? [d.duration, d.fps] : [d.of];
	return refs.flatMap((r) => sourcesOf(m, r));
}

function holds(left: number, op: string, right: number): boolean {
	switch (op) {
		case "<":
			return left < right;
		case "<=":
			return left <= right;
		case ">":
			return left > right;
		case ">=":
			return left >= right;
		default:
			return left !== right;
	}
}

/**
 * Checks `input` (the request's parameters, files and LoRAs left out) against the manifest and resolves every
 * value. Nothing is clamped silently: a derived value out of its range is refused, naming the parameters the
 * client gave that produce it, or, when the length of an input file produces it (an audio longer than the model
 * renders), naming that file, the limit, and the parameter that would pick a part of it.
 */
export function resolveParams(
	m: ModelManifest,
	input: Record<string, unknown>,
	measures: InputMeasures = {},
	random: () => number = Math.random,
): ParamsResult {
	const issues: FieldIssue[] = [];
	const values: Record<string, ParamValue> = {};
	const given = new Set<string>();
	/** Parameters whose value is the measured length of an input file, by the file. */
	const measuredFrom = new Map<string, MediaKind>();
	for (const name of Object.keys(input)) {
		if (!m.parameters[name]) {
			const known = Object.keys(m.parameters);
			issues.push({
				field: `input.${name}`,
				message: `${m.id} has no parameter ${name}; it takes ${known.length ? known.join(", ") : "none"}`,
			});
		}
	}
	for (const [name, p] of Object.entries(m.parameters)) {
		const raw = input[name];
		if (raw === undefined || raw === null) {
			const measured = measuredFor(p, measures);
			if (measured !== undefined && "default_from" in p && p.default_from && measured > p.maximum) {
				issues.push({
					field: `input.${p.default_from.input}`,
					message:
						`lasts ${round2(measured)} s; ${m.id} takes ${name} of at most ${p.maximum}: ` +
						`give input.${name} to render part of it`,
				});
				continue;
			}
			if (measured !== undefined && "default_from" in p && p.default_from) measuredFrom.set(name, p.default_from.input);
			const d = defaultOf(p, measures, random);
			if (d !== undefined) values[name] = d;
			continue;
		}
		const checked = checkValue(p, raw);
		if (!checked.ok) {
			issues.push({ field: `input.${name}`, message: `must be ${describeRule(p)}` });
			continue;
		}
		values[name] = checked.value;
		given.add(name);
	}
	if (issues.length > 0) return { ok: false, issues };

	const derived: Record<string, number> = {};
	const numberOf = (name: string): number => {
		const v = derived[name] ?? values[name];
		return typeof v === "number" ? v : Number.NaN;
	};
	for (const [name, d] of Object.entries(m.derived)) {
		const sources = sourcesOf(m, name);
		const value = deriveValue(d, numberOf);
		if (!Number.isFinite(value)) {
			// A source without a value: the manifest gives it no default, and the client gave none.
			const unset = sources.filter((s) => values[s] === undefined);
			for (const s of unset) issues.push({ field: `input.${s}`, message: `is required by ${m.id} (it sets ${name})` });
			continue;
		}
		const lo = d.min ?? Number.NEGATIVE_INFINITY;
		const hi = d.max ?? Number.POSITIVE_INFINITY;
		if (value >= lo && value <= hi) {
			derived[name] = value;
			continue;
		}
		const explicit = sources.filter((s) => given.has(s));
		const range = d.max === undefined ? `at least ${lo}` : d.min === undefined ? `at most ${hi}` : `${lo} to ${hi}`;
		const from = sources.map((s) => `${s} ${values[s]}`).join(", ");
		const measured = sources.find((s) => measuredFrom.has(s));
		if (explicit.length === 0 && measured !== undefined) {
			issues.push({
				field: `input.${measuredFrom.get(measured)}`,
				message: `gives ${name} ${value} (${from}); ${m.id} takes ${range}: give input.${measured} to render part of it`,
			});
			continue;
		}
		if (explicit.length === 0) {
			// Defaults alone out of range: the manifest's own defaults disagree with its limits (a test keeps the
			// shipped ones consistent); the nearest value in range is what it means.
			derived[name] = Math.min(hi, Math.max(lo, value));
			continue;
		}
		for (const s of explicit) {
			issues.push({ field: `input.${s}`, message: `gives ${name} ${value} (${from}); ${m.id} takes ${range}` });
		}
	}
	if (issues.length > 0) return { ok: false, issues };

	for (const r of m.rules) {
		const left = numberOf(r.left);
		const right = typeof r.right === "number" ? r.right : numberOf(r.right);
		if (!Number.isFinite(left) || !Number.isFinite(right) || holds(left, r.op, right)) continue;
		const names = [r.left, ...(typeof r.right === "string" ? [r.right] : [])];
		const blamed = names.flatMap((n) => sourcesOf(m, n)).filter((s) => given.has(s));
		const field = blamed[0] ?? sourcesOf(m, r.left)[0] ?? r.left;
		issues.push({ field: `input.${field}`, message: r.message });
	}
	return issues.length > 0 ? { ok: false, issues } : { ok: true, params: { values, derived } };
}
