import { describe, expect, it } from "vitest";
import type { ModelManifest, ParameterSpec } from "../../src/models/manifest";
import { describeRule, type ParamsResult, resolveParams } from "../../src/models/params";
import { SHIPPED_MANIFESTS } from "../../src/models/shipped";

const model = (id: string): ModelManifest => {
	const m = SHIPPED_MANIFESTS.find((x) => x.id === id);
	if (!m) throw new Error(`no shipped manifest ${id}`);
	return m;
};
const fixedRandom = () => 0.5;

function issues(result: ParamsResult): { field: string; message: string }[] {
	return result.ok ? [] : result.issues;
}

/**
 * Every parameter of every shipped model, driven from its own schema: its default resolves, and values just
 * outside its range or of the wrong type are refused with a message naming the field and stating the rule.
 */
describe.each(SHIPPED_MANIFESTS.map((m) => [m.id, m] as const))("%s parameters, from the schema", (_id, m) => {
	const cases: [string, unknown, boolean][] = [];
	for (const [name, p] of Object.entries(m.parameters)) cases.push(...casesFor(name, p));

	it.each(cases)("%s = %j: accepted %s", (name, value, accepted) => {
		const result = resolveParams(m, { [name]: value }, {}, fixedRandom);
		if (accepted) {
			expect(issues(result)).toEqual([]);
			return;
		}
		const found = issues(result);
		expect(found.map((i) => i.field)).toContain(`input.${name}`);
		const spec = m.parameters[name];
		if (spec) expect(found.find((i) => i.field === `input.${name}`)?.message).toBe(`must be ${describeRule(spec)}`);
	});

	it("resolves every default with no input", () => {
		const result = resolveParams(m, {}, {}, fixedRandom);
		expect(issues(result)).toEqual([]);
		if (!result.ok) return;
		for (const [name, p] of Object.entries(m.parameters)) {
			if (p.default !== undefined) expect(result.params.values[name]).toEqual(p.default);
		}
	});
});

function casesFor(name: string, p: ParameterSpec): [string, unknown, boolean][] {
	switch (p.type) {
		case "string":
			return [
				[name, "x".repeat(p.max_length), true],
				[name, "x".repeat(p.max_length + 1), false],
				[name, 7, false],
			];
		case "integer":
			return [
				[name, p.minimum, true],
				[name, p.minimum - 1, false],
				[name, p.maximum + 1, false],
				[name, p.minimum + 0.5, false],
				[name, String(p.minimum), false],
			];
		case "number":
			return [
				[name, p.minimum, true],
				[name, p.minimum - 0.01, false],
				[name, p.maximum + 0.01, false],
				[name, true, false],
			];
		case "boolean":
			return [
				[name, true, true],
				[name, "yes", false],
			];
		case "enum":
			return [
				[name, p.values[0], true],
				[name, "not-a-value", false],
			];
		case "resolution": {
			const s = p.min_side + ((p.multiple_of - (p.min_side % p.multiple_of)) % p.multiple_of);
			return [
				[name, `${s}x${s}`, true],
				[name, `${s + 1}x${s}`, false],
				[name, `${p.max_side + p.multiple_of}x${s}`, false],
				[name, `${s}`, false],
			];
		}
	}
}

describe("derived values and cross-field rules", () => {
	const i2v = model("wan2.2-i2v");
	const s2v = model("wan2.2-s2v");

	it("snaps frames to 4k+1 and splits the steps between the experts", () => {
		const result = resolveParams(i2v, { duration_s: 2, steps: 8 }, {}, fixedRandom);
		expect(result.ok && result.params.derived).toEqual({ frames: 33, split_step: 4 });
		const five = resolveParams(i2v, {}, {}, fixedRandom);
		expect(five.ok && five.params.derived.frames).toBe(81);
	});

	it("refuses a duration the model cannot render, naming duration_s and the frame limit", () => {
		expect(issues(resolveParams(i2v, { duration_s: 12 }, {}, fixedRandom))).toEqual([
			{ field: "input.duration_s", message: "gives frames 193 (duration_s 12, fps 16); wan2.2-i2v takes 5 to 161" },
		]);
	});

	it("blames only what the client gave: fps alone pushes the default duration over the limit", () => {
		expect(issues(resolveParams(i2v, { fps: 60 }, {}, fixedRandom)).map((i) => i.field)).toEqual(["input.fps"]);
	});

	it("takes the audio's length as the default duration", () => {
		const short = resolveParams(s2v, {}, { audio: { duration_s: 3 } }, fixedRandom);
		expect(short.ok && short.params.values.duration_s).toBe(3);
		expect(short.ok && short.params.derived.frames).toBe(49);
	});

	it("never clamps an audio longer than the model renders: it names the audio, the limit and duration_s", () => {
		expect(issues(resolveParams(s2v, {}, { audio: { duration_s: 45 } }, fixedRandom))).toEqual([
			{
				field: "input.audio",
				message:
					"gives frames 721 (duration_s 45, fps 16); wan2.2-s2v takes 5 to 161: give input.duration_s to render part of it",
			},
		]);
		// The preview renders at most 60 s (duration_s' own maximum): 300 s of audio is refused, not cut.
		expect(issues(resolveParams(model("preview"), {}, { audio: { duration_s: 300 } }, fixedRandom))).toEqual([
			{
				field: "input.audio",
				message: "lasts 300 s; preview takes duration_s of at most 60: give input.duration_s to render part of it",
			},
		]);
		// With a duration that fits, the same audio is fine: the video is its first part.
		const part = resolveParams(s2v, { duration_s: 10 }, { audio: { duration_s: 45 } }, fixedRandom);
		expect(part.ok && part.params.derived.frames).toBe(161);
	});

	it("raises an audio shorter than the shortest video to the minimum duration", () => {
		const tiny = resolveParams(model("preview"), {}, { audio: { duration_s: 0.1 } }, fixedRandom);
		expect(tiny.ok && tiny.params.values.duration_s).toBe(0.5);
	});

	it("draws a random seed when none is given, and keeps the one given", () => {
		const drawn = resolveParams(i2v, {}, {}, () => 0.25);
		expect(drawn.ok && drawn.params.values.seed).toBe(Math.floor(0.25 * 2 ** 53));
		const kept = resolveParams(i2v, { seed: 42 }, {}, () => 0.25);
		expect(kept.ok && kept.params.values.seed).toBe(42);
	});

	it("refuses an unknown parameter, listing the ones the model takes", () => {
		const found = issues(resolveParams(i2v, { promt: "typo" }, {}, fixedRandom));
		expect(found).toEqual([
			{
				field: "input.promt",
				message:
					"wan2.2-i2v has no parameter promt; it takes prompt, negative_prompt, resolution, duration_s, fps, seed, steps",
			},
		]);
	});

	it("refuses a resolution over the model's pixel budget", () => {
		expect(issues(resolveParams(i2v, { resolution: "1280x1280" }, {}, fixedRandom)).map((i) => i.field)).toEqual([
			"input.resolution",
		]);
		expect(issues(resolveParams(i2v, { resolution: "1280x720" }, {}, fixedRandom))).toEqual([]);
	});

	it("checks a compare rule, blaming the field the client gave", () => {
		const m: ModelManifest = {
			...i2v,
			rules: [{ rule: "compare", left: "split_step", op: ">=", right: 2, message: "steps must leave each expert 2" }],
		};
		expect(issues(resolveParams(m, { steps: 3 }, {}, fixedRandom))).toEqual([
			{ field: "input.steps", message: "steps must leave each expert 2" },
		]);
		expect(issues(resolveParams(m, { steps: 4 }, {}, fixedRandom))).toEqual([]);
	});
});
