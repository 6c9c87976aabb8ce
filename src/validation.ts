/**
 * How a refused request says what is wrong: each field error's message is the rule in words ("must be at most
 * 2000 characters"), and the problem's `detail` names the fields with their rules in one sentence, so a person
 * can act on the first line they read. Schemas that carry their own message keep it.
 */
import { z } from "@hono/zod-openapi";
import type { FieldError } from "./errors";

type Issue = z.core.$ZodRawIssue;

const ARTICLE_TYPES: Record<string, string> = {
	string: "a string",
	number: "a number",
	int: "an integer",
	bigint: "an integer",
	boolean: "true or false",
	object: "an object",
	array: "an array",
	date: "a date",
	null: "null",
};

const UNITS: Record<string, string> = { string: "characters", array: "items", set: "items", file: "bytes" };

const FORMATS: Record<string, string> = {
	url: "a URL",
	email: "an email address",
	uuid: "a UUID",
	datetime: "an RFC 3339 date-time",
	date: "a date (YYYY-MM-DD)",
	base64: "base64",
	base64url: "base64url",
};

/** What a JSON value is, in words: a refusal says what was sent instead. */
function kindOf(input: unknown): string {
	if (input === null) return "null";
	if (Array.isArray(input)) return "an array";
	if (typeof input === "object") return "an object";
	if (typeof input === "number") return Number.isInteger(input) ? "a number" : "a fractional number";
	return ARTICLE_TYPES[typeof input] ?? typeof input;
}

const quoted = (values: readonly unknown[]) => values.map((v) => JSON.stringify(v)).join(", ");

/** The rule an issue broke, as the end of a sentence about the field. */
export function ruleOf(issue: Issue): string {
	switch (issue.code) {
		case "invalid_type": {
			if (issue.input === undefined) return "is required";
			const expected = ARTICLE_TYPES[issue.expected] ?? issue.expected;
			if (issue.expected === "int" && typeof issue.input === "number") return "must be a whole number";
			return `must be ${expected}, not ${kindOf(issue.input)}`;
		}
		case "invalid_value":
			return issue.values.length === 1
				? `must be ${JSON.stringify(issue.values[0])}`
				: `must be one of ${quoted(issue.values)}`;
		case "too_big": {
			const unit = UNITS[issue.origin ?? ""];
			const bound = `${issue.inclusive === false ? "less than" : "at most"} ${issue.maximum}`;
			return unit ? `must have ${bound} ${unit}` : `must be ${bound}`;
		}
		case "too_small": {
			const unit = UNITS[issue.origin ?? ""];
			if (unit && Number(issue.minimum) === 1 && issue.origin === "string") return "must not be empty";
			const bound = `${issue.inclusive === false ? "more than" : "at least"} ${issue.minimum}`;
			return unit ? `must have ${bound} ${unit}` : `must be ${bound}`;
		}
		case "invalid_format": {
			if (issue.format === "regex" && "pattern" in issue) return `must match ${String(issue.pattern)}`;
			return `must be ${FORMATS[issue.format] ?? `a valid ${issue.format}`}`;
		}
		case "not_multiple_of":
			return `must be a multiple of ${issue.divisor}`;
		case "unrecognized_keys":
			return `has no field${issue.keys.length > 1 ? "s" : ""} ${quoted(issue.keys)} (leave ${issue.keys.length > 1 ? "them" : "it"} out)`;
		case "invalid_union":
			return "matches none of the accepted forms";
		case "invalid_key":
		case "invalid_element":
			return `has an invalid ${issue.code === "invalid_key" ? "key" : "value"}`;
		default:
			return "is not valid";
	}
}

// Every schema in the Worker speaks this way; a schema's own message (`.regex(re, "…")`) still wins.
z.config({ customError: (issue) => ruleOf(issue) });

/** A field error's path as a person names the field: the JSON body's fields without the `json.` prefix. */
export function fieldName(path: string): string {
	if (path === "json") return "the request body";
	return path.startsWith("json.") ? path.slice("json.".length) : path;
}

const SHOWN_IN_DETAIL = 3;

/** One sentence naming the fields and their rules (the first few; `errors` lists all). */
export function validationDetail(errors: FieldError[]): string {
	if (errors.length === 0) return "The request is not valid.";
	const shown = errors.slice(0, SHOWN_IN_DETAIL).map((e) => `${fieldName(e.path)}: ${e.message}`);
	const more = errors.length - shown.length;
	return `${shown.join("; ")}${more > 0 ? `; and ${more} more (see errors)` : ""}.`;
}

/** zod issues as the problem's `errors`, each path prefixed with where the value was (json, query, param…). */
export function fieldErrors(target: string, issues: readonly z.core.$ZodIssue[]): FieldError[] {
	return issues.map((issue) => ({
		path: `${target}${issue.path.length ? `.${issue.path.join(".")}` : ""}`,
		message: issue.message,
	}));
}
