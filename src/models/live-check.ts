/**
 * A manifest checked against what one ComfyUI server has installed (its `GET /object_info`), before any client
 * runs it there: the workflow as ComfyUI would judge it (object-info.ts), which of the manifest's weight files
 * the server does not list, which node classes it lacks (and the custom node repository that provides each), and
 * whether each parameter's range fits the node input it is written to. Pure: the caller fetches `/object_info`.
 */
import type { ModelManifest } from "./manifest";
import { checkWorkflow, type ObjectInfo, type WorkflowProblem } from "./object-info";

export interface LiveCheckReport {
	/** True when ComfyUI would run the workflow as filled for any value the parameter schema accepts. */
	ok: boolean;
	problems: WorkflowProblem[];
	/** Weight files of the manifest that no loader on the server lists. */
	missing_files: { folder: string; name: string }[];
	/** Node classes the server lacks, with the custom node repository that provides each (when the manifest says). */
	missing_nodes: { class_type: string; repository: string | null; commit: string | null }[];
}

type Spec = { type: unknown; options: Record<string, unknown> };

function declaredInput(info: ObjectInfo, classType: string, input: string): Spec | undefined {
	const def = info[classType]?.input;
	const raw = def?.required?.[input] ?? def?.optional?.[input];
	if (raw === undefined) return undefined;
	if (!Array.isArray(raw)) return { type: raw, options: {} };
	const options = typeof raw[1] === "object" && raw[1] !== null ? (raw[1] as Record<string, unknown>) : {};
	return { type: raw[0], options };
}

/**
 * The node inputs a job fills in: input files (their names exist only once uploaded for the job), the output
 * prefix, and every parameter and derived value (their values are checked against the node's range below, not
 * the placeholder the graph holds).
 */
function filledPerJob(m: ModelManifest): Set<string> {
	const key = (node: string, input: string) => `${node}\u0000${input}`;
	const filled = new Set<string>();
	for (const spec of Object.values(m.inputs)) for (const b of spec?.bind ?? []) filled.add(key(b.node, b.input));
	if (m.workflow) filled.add(key(m.workflow.output.prefix.node, m.workflow.output.prefix.input));
	for (const p of Object.values(m.parameters)) for (const b of p.bind) filled.add(key(b.node, b.input));
	for (const d of Object.values(m.derived)) for (const b of d.bind) filled.add(key(b.node, b.input));
	return filled;
}

/** Parameter ranges wider than what the node input takes: a value the schema accepts that ComfyUI would refuse. */
function rangeProblems(m: ModelManifest, info: ObjectInfo): WorkflowProblem[] {
	const graph = m.workflow?.graph ?? {};
	const out: WorkflowProblem[] = [];
	for (const [name, p] of Object.entries(m.parameters)) {
		for (const b of p.bind) {
			const node = graph[b.node];
			const spec = node ? declaredInput(info, node.class_type, b.input) : undefined;
			if (!node || !spec) continue;
			const at = { node: b.node, class_type: node.class_type, input: b.input };
			const { min, max } = spec.options;
			if (p.type === "integer" || p.type === "number") {
				if (typeof min === "number" && p.minimum < min) {
					out.push({
						...at,
						rule: "below_min",
						detail: `parameter ${name} allows ${p.minimum}; the node's minimum is ${min}`,
					});
				}
				if (typeof max === "number" && p.maximum > max) {
					out.push({
						...at,
						rule: "above_max",
						detail: `parameter ${name} allows ${p.maximum}; the node's maximum is ${max}`,
					});
				}
			}
			if (p.type === "enum") {
				const choices = Array.isArray(spec.type) ? spec.type : spec.options.options;
				if (Array.isArray(choices)) {
					const foreign = p.values.filter((v) => !choices.includes(v));
					if (foreign.length > 0) {
						out.push({
							...at,
							rule: "not_in_list",
							detail: `parameter ${name} allows ${foreign.map((v) => JSON.stringify(v)).join(", ")}, which the node does not list`,
						});
					}
				}
			}
			if (p.type === "resolution") {
				const side = p.max_side;
				if (typeof max === "number" && side > max) {
					out.push({
						...at,
						rule: "above_max",
						detail: `parameter ${name} allows a side of ${side}; the node's maximum is ${max}`,
					});
				}
			}
		}
	}
	return out;
}

export function checkManifestLive(m: ModelManifest, info: ObjectInfo): LiveCheckReport {
	const graph = m.workflow?.graph ?? {};
	const filled = filledPerJob(m);
	const problems = checkWorkflow(graph, info).filter(
		// A value filled per job is not judged by its placeholder; a missing input or a bad link still is.
		(p) =>
			!(
				p.input &&
				filled.has(`${p.node}\u0000${p.input}`) &&
				["not_in_list", "no_choices", "below_min", "above_max", "wrong_type"].includes(p.rule)
			),
	);
	problems.push(...rangeProblems(m, info));

	const missingFiles: LiveCheckReport["missing_files"] = [];
	for (const f of m.files) {
		const used = problems.some((p) => {
			if (p.rule !== "not_in_list" && p.rule !== "no_choices") return false;
			const value = p.input ? graph[p.node]?.inputs[p.input] : undefined;
			return value === f.name;
		});
		if (used) missingFiles.push({ folder: f.folder, name: f.name });
	}

	const missingNodes: LiveCheckReport["missing_nodes"] = [];
	for (const p of problems) {
		if (p.rule !== "unknown_node" || missingNodes.some((n) => n.class_type === p.class_type)) continue;
		const from = m.custom_nodes.find((c) => c.nodes.includes(p.class_type));
		missingNodes.push({ class_type: p.class_type, repository: from?.repository ?? null, commit: from?.commit ?? null });
	}
	return { ok: problems.length === 0, problems, missing_files: missingFiles, missing_nodes: missingNodes };
}
