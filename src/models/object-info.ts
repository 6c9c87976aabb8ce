/**
 * A workflow in ComfyUI's API format checked against ComfyUI's node definitions (`GET /object_info`), the way
 * ComfyUI's own `validate_inputs` judges a prompt before it runs it (comfyanonymous/ComfyUI v0.8.0, execution.py
 * and comfy_execution/validation.py): node types, required inputs, links and the types they carry, numbers
 * within min/max, choices within their list. One check is stricter than ComfyUI: an input the node does not
 * declare is a problem, since ComfyUI drops it silently and a value meant for it goes nowhere.
 *
 * Pure: the definitions are an argument, recorded (test/data/comfyui-object-info.json) or read from a live server.
 *
 *   const problems = checkWorkflow(template.workflow, objectInfo);
 *   // [{ node: "13", class_type: "KSamplerAdvanced", input: "steps", rule: "above_max", detail: "…" }]
 */

/** One node of an API-format workflow: `{ class_type, inputs }`; a link is `[source node id, output index]`. */
export interface ApiNode {
	class_type: string;
	inputs: Record<string, unknown>;
}
export type ApiWorkflow = Record<string, ApiNode>;

/** What `/object_info` says of one node class (the fields this check reads). */
export interface NodeDefinition {
	input: { required?: Record<string, unknown>; optional?: Record<string, unknown> };
	output: unknown[];
	output_node?: boolean;
}
export type ObjectInfo = Record<string, NodeDefinition>;

export type ProblemRule =
	/** The class is not installed on that ComfyUI. */
	| "unknown_node"
	/** The node declares no such input. */
	| "unknown_input"
	| "missing_input"
	/** Not a `[node id, output index]` pair, or it points at no node or no output. */
	| "bad_link"
	/** The linked output's type is not one the input takes. */
	| "link_type_mismatch"
	/** A number, string or boolean input holds a value of another kind. */
	| "wrong_type"
	| "below_min"
	| "above_max"
	| "not_in_list"
	/** A choice of files (models, uploads) with none on that server: the value cannot be checked there. */
	| "no_choices"
	/** Nothing in the graph is an output node, so ComfyUI would run nothing. */
	| "no_output";

export interface WorkflowProblem {
	/** The node id; empty for a problem of the whole graph. */
	node: string;
	class_type: string;
	input?: string;
	rule: ProblemRule;
	detail: string;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** `[type, options?]` as `/object_info` writes each input; the type is a name or, for old combos, the list. */
function inputSpec(raw: unknown): { type: unknown; options: Json } {
	if (!Array.isArray(raw)) return { type: raw, options: {} };
	return { type: raw[0], options: isObject(raw[1]) ? raw[1] : {} };
}

/** ComfyUI's validate_node_input: equal, `*` on either side, or overlapping comma-separated unions. */
function typesMatch(received: unknown, wanted: unknown): boolean {
	if (received === wanted) return true;
	if (typeof received !== "string" || typeof wanted !== "string") return Array.isArray(received) && wanted === "COMBO";
	const r = received.split(",").map((t) => t.trim());
	const w = wanted.split(",").map((t) => t.trim());
	if (r.includes("*") || w.includes("*") || received === "COMFY_MATCHTYPE_V3" || wanted === "COMFY_MATCHTYPE_V3") {
		return true;
	}
	return r.some((t) => w.includes(t));
}

function checkValue(type: unknown, options: Json, value: unknown): { rule: ProblemRule; detail: string } | undefined {
	const choices = Array.isArray(type) ? type : type === "COMBO" ? options.options : undefined;
	if (Array.isArray(choices)) {
		if (choices.length === 0) return { rule: "no_choices", detail: `'${String(value)}': the server lists no choices` };
		if (!choices.includes(value)) {
			const shown = choices.length > 20 ? `a list of ${choices.length}` : JSON.stringify(choices);
			return { rule: "not_in_list", detail: `'${String(value)}' not in ${shown}` };
		}
		return undefined;
	}
	if (type === "INT" || type === "FLOAT") {
		if (typeof value !== "number" || !Number.isFinite(value) || (type === "INT" && !Number.isInteger(value))) {
			return {
				rule: "wrong_type",
				detail: `${JSON.stringify(value)} is not ${type === "INT" ? "an integer" : "a number"}`,
			};
		}
		if (typeof options.min === "number" && value < options.min) {
			return { rule: "below_min", detail: `${value} is smaller than the minimum ${options.min}` };
		}
		if (typeof options.max === "number" && value > options.max) {
			return { rule: "above_max", detail: `${value} is bigger than the maximum ${options.max}` };
		}
		return undefined;
	}
	if (type === "STRING" && typeof value !== "string") return { rule: "wrong_type", detail: "not a string" };
	if (type === "BOOLEAN" && typeof value !== "boolean") return { rule: "wrong_type", detail: "not a boolean" };
	// Any other type is a socket (MODEL, LATENT, …): only a link can fill it.
	if (typeof type === "string" && !["INT", "FLOAT", "STRING", "BOOLEAN"].includes(type)) {
		return { rule: "bad_link", detail: `takes a ${type} link, got a value` };
	}
	return undefined;
}

function checkLink(workflow: ApiWorkflow, objectInfo: ObjectInfo, link: unknown[], wanted: unknown) {
	const [source, index] = link;
	const from = typeof source === "string" ? workflow[source] : undefined;
	if (!from || typeof index !== "number" || !Number.isInteger(index)) {
		return { rule: "bad_link" as const, detail: `${JSON.stringify(link)} links to no node` };
	}
	const outputs = objectInfo[from.class_type]?.output;
	if (!outputs) return undefined; // the source node's own problem (unknown_node) says it
	if (index < 0 || index >= outputs.length) {
		return { rule: "bad_link" as const, detail: `node ${source} (${from.class_type}) has no output ${index}` };
	}
	if (!typesMatch(outputs[index], wanted)) {
		const got = JSON.stringify(outputs[index]);
		return { rule: "link_type_mismatch" as const, detail: `node ${source} output ${index} is ${got}, wants ${wanted}` };
	}
	return undefined;
}

/** Every problem ComfyUI would refuse the workflow for (and unknown inputs); empty when it would run it. */
export function checkWorkflow(workflow: ApiWorkflow, objectInfo: ObjectInfo): WorkflowProblem[] {
	const problems: WorkflowProblem[] = [];
	let outputs = 0;
	for (const [node, { class_type, inputs }] of Object.entries(workflow)) {
		const definition = objectInfo[class_type];
		if (!definition) {
			problems.push({ node, class_type, rule: "unknown_node", detail: `no node class ${class_type}` });
			continue;
		}
		if (definition.output_node) outputs++;
		const required = definition.input.required ?? {};
		const declared = { ...(definition.input.optional ?? {}), ...required };
		const add = (input: string, found: { rule: ProblemRule; detail: string } | undefined) => {
			if (found) problems.push({ node, class_type, input, ...found });
		};
		for (const input of Object.keys(required)) {
			if (!(input in inputs)) add(input, { rule: "missing_input", detail: "required input is missing" });
		}
		for (const [input, value] of Object.entries(inputs)) {
			if (!(input in declared)) {
				add(input, { rule: "unknown_input", detail: `${class_type} declares no input ${input}` });
				continue;
			}
			const { type, options } = inputSpec(declared[input]);
			add(
				input,
				Array.isArray(value) ? checkLink(workflow, objectInfo, value, type) : checkValue(type, options, value),
			);
		}
	}
	if (outputs === 0) problems.push({ node: "", class_type: "", rule: "no_output", detail: "no output node" });
	return problems;
}
