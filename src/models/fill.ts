/**
 * A manifest's workflow filled for one job: every parameter and derived value written into the node inputs it is
 * bound to, on a copy of the graph (never by text replacement: a prompt with quotes or braces cannot change the
 * graph). What stays open is what only the machine running ComfyUI knows: the names its input files get once they
 * are there (`inputs`). The `comfyui` adapter binds them after uploading the files; the GPU worker after
 * downloading them (docs/gpu-job-protocol.md, `workflow`). Pure.
 */
import type { MediaKind, ModelManifest, NodeInput, WorkflowGraph } from "./manifest";
import type { ResolvedParams } from "./params";

/** The filled workflow a job carries (the `workflow` of the GPU job input). */
export interface FilledWorkflow {
	/** The manifest it was filled from: `id@version`. */
	model: string;
	graph: WorkflowGraph;
	/** Where each input file's name goes once the file is on the ComfyUI host. */
	inputs: Partial<Record<MediaKind, NodeInput[]>>;
	/** The node whose output is the video. */
	output_node: string;
	/**
	 * The weight files the graph loads, `folder/name`, with their size and sha256 when the manifest pins them, and
	 * where a worker that lacks one may fetch it: `url`, a short-lived signed GET of the operator's R2 copy (set
	 * when the job input is built), then the public `source`.
	 */
	files: { path: string; size?: number; sha256?: string; url?: string; source?: string; r2_key?: string }[];
	/** Node classes the graph uses that come from custom nodes, with the repository providing each. */
	custom_nodes: { class_type: string; repository: string; commit: string }[];
	/**
	 * The job's LoRAs, in order: each one's file, once downloaded into the `loras` folder, is named in `bind` (its
	 * `LoraLoaderModelOnly` nodes, chained in front of every model input the manifest's slot targets).
	 */
	loras?: { url: string; sha256?: string; max_bytes: number; bind: NodeInput[] }[];
}

/** A LoRA of a job: where to fetch it, how strongly to apply it. */
export interface JobLora {
	url: string;
	strength: number;
	sha256?: string;
}

export class FillError extends Error {}

function write(graph: WorkflowGraph, at: NodeInput, value: unknown): void {
	const node = graph[at.node];
	// The manifest schema checks every binding against the graph; this guards a manifest stored before a change.
	if (!node || !(at.input in node.inputs)) throw new FillError(`node ${at.node} has no input ${at.input}`);
	node.inputs[at.input] = value;
}

/** Writes `params` into a copy of the manifest's graph, and the per-job output prefix into its save node. */
export function fillWorkflow(
	m: ModelManifest,
	params: ResolvedParams,
	prefix: string,
	loras: readonly JobLora[] = [],
): FilledWorkflow {
	if (!m.workflow) throw new FillError(`${m.id} has no workflow`);
	const graph = structuredClone(m.workflow.graph);
	for (const [name, spec] of Object.entries(m.parameters)) {
		const value = params.values[name];
		if (value === undefined) continue; // no value and no default: the graph keeps its own
		for (const b of spec.bind) {
			if (b.part) {
				const [width, height] = String(value).split("x").map(Number);
				write(graph, b, b.part === "width" ? width : height);
			} else {
				write(graph, b, value);
			}
		}
	}
	for (const [name, spec] of Object.entries(m.derived)) {
		const value = params.derived[name];
		if (value === undefined) continue;
		for (const b of spec.bind) write(graph, b, value);
	}
	write(graph, m.workflow.output.prefix, prefix);
	const inputs: FilledWorkflow["inputs"] = {};
	for (const [kind, spec] of Object.entries(m.inputs) as [MediaKind, { bind: NodeInput[] }][]) {
		if (spec.bind.length > 0) inputs[kind] = spec.bind;
	}
	const loraBinds = chainLoras(m, graph, loras);
	const used = new Set(Object.values(graph).map((n) => n.class_type));
	return {
		...(loras.length > 0 && m.loras
			? {
					loras: loras.map((l, i) => ({
						url: l.url,
						...(l.sha256 ? { sha256: l.sha256 } : {}),
						max_bytes: m.loras?.max_bytes ?? 0,
						bind: loraBinds[i] ?? [],
					})),
				}
			: {}),
		model: `${m.id}@${m.version}`,
		graph,
		inputs,
		output_node: m.workflow.output.node,
		files: m.files.map((f) => ({
			path: `${f.folder}/${f.name}`,
			...(f.size !== undefined ? { size: f.size } : {}),
			...(f.sha256 ? { sha256: f.sha256 } : {}),
			...(f.source ? { source: f.source } : {}),
			...(f.r2_key ? { r2_key: f.r2_key } : {}),
		})),
		custom_nodes: m.custom_nodes.flatMap((c) =>
			c.nodes
				.filter((n) => used.has(n))
				.map((class_type) => ({ class_type, repository: c.repository, commit: c.commit })),
		),
	};
}

/**
 * Puts one `LoraLoaderModelOnly` per LoRA in front of each model input the slot targets (the first LoRA nearest
 * the loader), on `graph` itself; returns, per LoRA, the `lora_name` inputs its file name goes to.
 */
function chainLoras(m: ModelManifest, graph: WorkflowGraph, loras: readonly JobLora[]): NodeInput[][] {
	const binds: NodeInput[][] = loras.map(() => []);
	if (!m.loras || loras.length === 0) return binds;
	m.loras.targets.forEach((target, t) => {
		const node = graph[target.node];
		if (!node) throw new FillError(`no node ${target.node} for a LoRA`);
		let upstream = node.inputs[target.input];
		loras.forEach((lora, i) => {
			const id = `lora_${t}_${i}`;
			if (graph[id]) throw new FillError(`the graph already has a node ${id}`);
			graph[id] = {
				class_type: "LoraLoaderModelOnly",
				inputs: { model: upstream, lora_name: "", strength_model: lora.strength },
				_meta: { title: `LoRA ${i + 1}` },
			};
			binds[i]?.push({ node: id, input: "lora_name" });
			upstream = [id, 0];
		});
		node.inputs[target.input] = upstream;
	});
	return binds;
}

/** The graph with the input files' names written where they go; a file the graph needs and lacks is an error. */
export function bindInputFiles(w: FilledWorkflow, names: Partial<Record<MediaKind, string>>): WorkflowGraph {
	const graph = structuredClone(w.graph);
	for (const [kind, binds] of Object.entries(w.inputs) as [MediaKind, NodeInput[]][]) {
		const name = names[kind];
		if (name === undefined) continue; // an optional file not given: the loader keeps its placeholder
		for (const b of binds) write(graph, b, name);
	}
	return graph;
}
