// A job's input checked against its model's entry in the catalog (`GET /v1/models/{id}`) before anything is sent:
// the files it needs, each parameter against its JSON Schema (types, ranges, lengths, enumerations, the resolution
// grid). The API checks again, and has the last word (cross-field rules, what the files measure).
import type { CatalogModel } from "./types.ts";

export interface InputIssue {
	/** The field of the request body, `input.<name>` (or `model`). */
	field: string;
	message: string;
}

interface PropertySchema {
	type?: string;
	minimum?: number;
	maximum?: number;
	multipleOf?: number;
	minLength?: number;
	maxLength?: number;
	enum?: unknown[];
	"x-resolution"?: { min_side: number; max_side: number; multiple_of: number; max_pixels?: number };
}

/** The parameters' JSON Schema properties, by name. */
export function parameterSchemas(model: CatalogModel): Record<string, PropertySchema> {
	const properties = (model.parameters as { properties?: Record<string, PropertySchema> }).properties;
	return properties ?? {};
}

/** Why `value` breaks `schema`, as the end of a sentence about the field; undefined when it does not. */
export function ruleBroken(schema: PropertySchema, value: unknown): string | undefined {
	if (schema.enum) {
		return schema.enum.includes(value)
			? undefined
			: `must be one of ${schema.enum.map((v) => JSON.stringify(v)).join(", ")}`;
	}
	const range = (lo?: number, hi?: number) => (lo !== undefined && hi !== undefined ? ` from ${lo} to ${hi}` : "");
	switch (schema.type) {
		case "integer":
		case "number": {
			const whole = schema.type === "integer";
			const ok =
				typeof value === "number" &&
				Number.isFinite(value) &&
				(!whole || Number.isInteger(value)) &&
				(schema.minimum === undefined || value >= schema.minimum) &&
				(schema.maximum === undefined || value <= schema.maximum) &&
				(schema.multipleOf === undefined || value % schema.multipleOf === 0);
			if (ok) return undefined;
			const multiple = schema.multipleOf ? `, a multiple of ${schema.multipleOf}` : "";
			return `must be ${whole ? "an integer" : "a number"}${range(schema.minimum, schema.maximum)}${multiple}`;
		}
		case "boolean":
			return typeof value === "boolean" ? undefined : "must be true or false";
		case "string": {
			if (typeof value !== "string") return "must be a string";
			if (schema.maxLength !== undefined && value.length > schema.maxLength)
				return `must have at most ${schema.maxLength} characters`;
			if (schema.minLength !== undefined && value.length < schema.minLength)
				return `must have at least ${schema.minLength} characters`;
			const grid = schema["x-resolution"];
			if (grid) return resolutionBroken(grid, value);
			return undefined;
		}
		default:
			return undefined;
	}
}

function resolutionBroken(grid: NonNullable<PropertySchema["x-resolution"]>, value: string): string | undefined {
	const rule =
		`must be WIDTHxHEIGHT, each side a multiple of ${grid.multiple_of} from ${grid.min_side} to ${grid.max_side}` +
		(grid.max_pixels ? `, at most ${grid.max_pixels} pixels` : "");
	const m = /^(\d{1,5})x(\d{1,5})$/.exec(value);
	if (!m) return rule;
	const sides = [Number(m[1]), Number(m[2])];
	const onGrid = sides.every((s) => s >= grid.min_side && s <= grid.max_side && s % grid.multiple_of === 0);
	const small = !grid.max_pixels || (sides[0] ?? 0) * (sides[1] ?? 0) <= grid.max_pixels;
	return onGrid && small ? undefined : rule;
}

/**
 * The problems of `input` for `model`: missing required files, files the model does not take, unknown
 * parameters, values outside their schema. Empty when the input may be sent.
 */
export function checkInput(model: CatalogModel, input: Record<string, unknown>): InputIssue[] {
	const issues: InputIssue[] = [];
	const inputs = model.inputs as Record<string, { required: boolean } | undefined>;
	const schemas = parameterSchemas(model);
	for (const [name, spec] of Object.entries(inputs)) {
		if (spec?.required && (input[name] === undefined || input[name] === null)) {
			issues.push({ field: `input.${name}`, message: `is required by ${model.id}` });
		}
	}
	for (const [name, value] of Object.entries(input)) {
		if (value === undefined || inputs[name] || name === "loras") continue;
		const schema = schemas[name];
		if (!schema) {
			const takes = [...Object.keys(inputs), ...Object.keys(schemas)].join(", ");
			issues.push({ field: `input.${name}`, message: `is not something ${model.id} takes (it takes ${takes})` });
			continue;
		}
		const broken = ruleBroken(schema, value);
		if (broken) issues.push({ field: `input.${name}`, message: broken });
	}
	return issues;
}
