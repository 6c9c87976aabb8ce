/**
 * TEST DOUBLE: a small TypeScript emulator of ComfyUI's HTTP API (gpu-protocols.md §4) for the `comfyui` backend
 * tests, run in Node by the vitest global setup. (server.py next to it emulates the websocket side for the Python
 * GPU worker; the Worker's adapter follows prompts through `/history` and `/queue`, which this one serves without
 * a Python environment.) Behind `Authorization: Bearer <token>` like a vast.ai template's Caddy (401 otherwise).
 *
 * Routes: `POST /upload/image` (multipart `image`, `overwrite`, `subfolder`) → {name, subfolder, type};
 * `POST /prompt` {prompt, client_id, prompt_id?} → {prompt_id, number, node_errors} or 400 with ComfyUI's
 * validation error (unknown node class, LoadImage/LoadAudio naming a file never uploaded); `GET /prompt`
 * → {exec_info:{queue_remaining}}; `GET /history/{id}` → {} until done, then {id:{prompt, outputs, status, meta}}
 * with the video under `images` + `animated:[true]` (SaveVideo); `GET /queue` → {queue_running, queue_pending};
 * `POST /queue` {delete}|{clear}; `POST /interrupt` {prompt_id?}; `POST /history` {delete}|{clear};
 * `GET /view?filename&subfolder&type`; `GET /system_stats`.
 *
 * Each `/history/{id}` call moves that prompt one step: pending → running → finished. Faults come from `#emu:` tokens
 * in the workflow's text inputs (the prompt): `reject` (400 value_not_in_list), `error` (execution_error),
 * `slow=N` (N more steps pending), `vanish` (forgotten, as after a restart), `chunked` (`/view` without a
 * content-length), `noutput` (success without a video).
 */
import { type Json, type NodeRequest, type NodeResponse, readBody, sendJson, serveOnLoopback } from "../loopback-http";
import { fakeVideo } from "../pod/server";

export interface ComfyEmulator {
	url: string;
	token: string;
	/** Accepts another Bearer token too (a vast.ai instance's WEB_PASSWORD, see ../vastai/server.ts). */
	addToken(token: string): void;
	close(): Promise<void>;
}

const KNOWN_NODES = new Set([
	"UNETLoader",
	"LoraLoaderModelOnly",
	"ModelSamplingSD3",
	"CLIPLoader",
	"CLIPTextEncode",
	"VAELoader",
	"LoadImage",
	"LoadAudio",
	"WanImageToVideo",
	"WanSoundImageToVideo",
	"AudioEncoderLoader",
	"AudioEncoderEncode",
	"KSampler",
	"KSamplerAdvanced",
	"VAEDecode",
	"CreateVideo",
	"SaveVideo",
]);

interface Prompt {
	id: string;
	number: number;
	graph: Record<string, { class_type: string; inputs: Json }>;
	text: string;
	state: "pending" | "running" | "success" | "error" | "interrupted";
	steps: number;
	file?: { filename: string; subfolder: string };
	startedAt?: number;
}

const directive = (text: string, name: string) => new RegExp(`#emu:${name}(?:=(\\w+))?`).exec(text);

export async function startComfyEmulator(options: { token?: string } = {}): Promise<ComfyEmulator> {
	const token = options.token ?? "comfy-emulator-token";
	const files = new Map<string, Uint8Array>(); // "type/subfolder/name" → bytes
	const prompts = new Map<string, Prompt>();
	const tokens = new Set([token]);
	/** Every graph queued, kept after the prompt is deleted, for `GET /_control/prompts/{id}/graph`. */
	const graphs = new Map<string, Prompt["graph"]>();
	let number = 0;
	const calls: Record<string, number> = {};

	const send = sendJson;
	const fileKey = (type: string, subfolder: string, name: string) => `${type}/${subfolder}/${name}`;

	function advance(p: Prompt): void {
		if (p.state !== "pending" && p.state !== "running") return;
		p.steps += 1;
		const slow = Number(directive(p.text, "slow")?.[1] ?? 0);
		if (p.state === "pending") {
			if (p.steps > slow && ![...prompts.values()].some((o) => o.state === "running")) {
				p.state = "running";
				p.startedAt = Date.now();
			}
			return;
		}
		if (directive(p.text, "error")) {
			p.state = "error";
			return;
		}
		p.state = "success";
		if (directive(p.text, "noutput")) return;
		const save = Object.values(p.graph).find((n) => n.class_type === "SaveVideo");
		const prefix = String(save?.inputs.filename_prefix ?? "video/ComfyUI");
		const slash = prefix.lastIndexOf("/");
		const subfolder = slash >= 0 ? prefix.slice(0, slash) : "";
		const filename = `${prefix.slice(slash + 1)}_00001_.mp4`;
		files.set(fileKey("output", subfolder, filename), fakeVideo(p.id));
		p.file = { filename, subfolder };
	}

	function historyEntry(p: Prompt): Json {
		const t0 = p.startedAt ?? Date.now();
		const messages: unknown[] = [["execution_start", { prompt_id: p.id, timestamp: t0 }]];
		if (p.state === "success") messages.push(["execution_success", { prompt_id: p.id, timestamp: t0 + 4200 }]);
		if (p.state === "error") {
			messages.push([
				"execution_error",
				{
					prompt_id: p.id,
					node_id: "13",
					node_type: "KSamplerAdvanced",
					exception_message: "Allocation on device",
					exception_type: "torch.OutOfMemoryError",
					traceback: ["Traceback …"],
					timestamp: t0 + 900,
				},
			]);
		}
		if (p.state === "interrupted") messages.push(["execution_interrupted", { prompt_id: p.id, timestamp: t0 + 10 }]);
		const save = Object.entries(p.graph).find(([, n]) => n.class_type === "SaveVideo")?.[0] ?? "17";
		return {
			prompt: [p.number, p.id, p.graph, {}, [save]],
			outputs: p.file ? { [save]: { images: [{ ...p.file, type: "output" }], animated: [true] } } : {},
			status: { status_str: p.state === "success" ? "success" : "error", completed: p.state === "success", messages },
			meta: {},
		};
	}

	function validate(graph: Record<string, { class_type: string; inputs: Json }>, text: string): Json | null {
		const nodeErrors: Json = {};
		for (const [id, node] of Object.entries(graph)) {
			if (!KNOWN_NODES.has(node.class_type)) {
				return {
					error: {
						type: "missing_node_type",
						message: `Node '${node.class_type}' not found`,
						details: "",
						extra_info: { node_id: id, class_type: node.class_type },
					},
					node_errors: {},
				};
			}
			const ref = node.class_type === "LoadImage" ? "image" : node.class_type === "LoadAudio" ? "audio" : null;
			const value = ref ? String(node.inputs[ref] ?? "") : "";
			const rejected = directive(text, "reject") && node.class_type === "LoadImage";
			if (ref && (rejected || !files.has(fileKey("input", "", value)))) {
				nodeErrors[id] = {
					errors: [
						{
							type: "value_not_in_list",
							message: "Value not in list",
							details: `${ref}: '${value}' not in list`,
							extra_info: { input_name: ref, received_value: value },
						},
					],
					dependent_outputs: ["17"],
					class_type: node.class_type,
				};
			}
		}
		if (Object.keys(nodeErrors).length === 0) return null;
		return {
			error: {
				type: "prompt_outputs_failed_validation",
				message: "Prompt outputs failed validation",
				details: "",
				extra_info: {},
			},
			node_errors: nodeErrors,
		};
	}

	async function handle(req: NodeRequest, res: NodeResponse): Promise<void> {
		const url = new URL(req.url ?? "/", "http://emulator");
		const path = url.pathname.replace(/^\/api(?=\/)/, "");
		const raw = await readBody(req);
		const json = (): Json => {
			try {
				return JSON.parse(new TextDecoder().decode(raw)) as Json;
			} catch {
				return {};
			}
		};
		if (path === "/_control/calls") return send(res, 200, calls);
		const control = /^\/_control\/prompts\/([^/]+)(\/graph)?$/.exec(path);
		if (control) {
			const p = prompts.get(control[1] ?? "");
			if (control[2] === "/graph") return send(res, 200, { graph: graphs.get(control[1] ?? "") ?? null });
			return p ? send(res, 200, { id: p.id, state: p.state, steps: p.steps }) : send(res, 404, {});
		}
		if (!tokens.has(String(req.headers.authorization ?? "").replace(/^Bearer /, ""))) {
			return send(res, 401, { error: "unauthorized" });
		}
		const op = `${req.method} ${path.replace(/\/[0-9a-f-]{36}$/, "/{id}")}`;
		calls[op] = (calls[op] ?? 0) + 1;

		if (req.method === "POST" && path === "/upload/image") {
			const form = await new Request("http://x", {
				method: "POST",
				headers: { "content-type": String(req.headers["content-type"] ?? "") },
				body: raw,
			}).formData();
			const file = form.get("image");
			if (!(file instanceof Blob) || !("name" in file)) return send(res, 400, { error: "no image" });
			const subfolder = String(form.get("subfolder") ?? "");
			const name = String((file as File).name);
			files.set(fileKey("input", subfolder, name), new Uint8Array(await file.arrayBuffer()));
			return send(res, 200, { name, subfolder, type: "input" });
		}
		if (req.method === "POST" && path === "/prompt") {
			const body = json();
			const graph = (body.prompt ?? {}) as Prompt["graph"];
			if (Object.keys(graph).length === 0) {
				return send(res, 400, { error: { type: "no_prompt", message: "No prompt provided" }, node_errors: {} });
			}
			const text = Object.values(graph)
				.map((n) => (typeof n.inputs?.text === "string" ? n.inputs.text : ""))
				.join(" ");
			const invalid = validate(graph, text);
			if (invalid) return send(res, 400, invalid);
			const id = typeof body.prompt_id === "string" ? body.prompt_id : crypto.randomUUID();
			number += 1;
			prompts.set(id, { id, number, graph, text, state: "pending", steps: 0 });
			graphs.set(id, graph);
			return send(res, 200, { prompt_id: id, number, node_errors: {} });
		}
		if (req.method === "GET" && path === "/prompt") {
			const remaining = [...prompts.values()].filter((p) => p.state === "pending" || p.state === "running").length;
			return send(res, 200, { exec_info: { queue_remaining: remaining } });
		}
		const hist = /^\/history\/([^/]+)$/.exec(path);
		if (req.method === "GET" && hist) {
			const p = prompts.get(decodeURIComponent(hist[1] ?? ""));
			if (!p) return send(res, 200, {});
			if (directive(p.text, "vanish") && p.state === "running") {
				prompts.delete(p.id);
				return send(res, 200, {});
			}
			const answer = p.state === "pending" || p.state === "running" ? {} : { [p.id]: historyEntry(p) };
			advance(p);
			return send(res, 200, answer);
		}
		if (req.method === "GET" && path === "/queue") {
			const row = (p: Prompt) => [p.number, p.id, p.graph, { client_id: "x" }, ["17"]];
			const all = [...prompts.values()];
			return send(res, 200, {
				queue_running: all.filter((p) => p.state === "running").map(row),
				queue_pending: all.filter((p) => p.state === "pending").map(row),
			});
		}
		if (req.method === "POST" && (path === "/queue" || path === "/history")) {
			const body = json();
			const ids = Array.isArray(body.delete) ? body.delete.map(String) : [];
			for (const id of ids) {
				const p = prompts.get(id);
				if (!p) continue;
				if (path === "/history" && p.state !== "pending" && p.state !== "running") prompts.delete(id);
				if (path === "/queue" && p.state === "pending") prompts.delete(id);
			}
			return send(res, 200, {});
		}
		if (req.method === "POST" && path === "/interrupt") {
			const target = json().prompt_id;
			for (const p of prompts.values()) {
				if (p.state === "running" && (target === undefined || target === p.id)) p.state = "interrupted";
			}
			return send(res, 200, {});
		}
		if (req.method === "GET" && path === "/view") {
			const q = url.searchParams;
			const key = fileKey(q.get("type") ?? "output", q.get("subfolder") ?? "", q.get("filename") ?? "");
			const bytes = files.get(key);
			if (!bytes) return send(res, 404, { error: "not found" });
			const chunked = [...prompts.values()].some(
				(p) => p.file?.filename === q.get("filename") && directive(p.text, "chunked"),
			);
			if (chunked) {
				res.writeHead(200, { "content-type": "video/mp4" });
				res.write(bytes.subarray(0, 1000));
				return res.end(bytes.subarray(1000));
			}
			res.writeHead(200, { "content-type": "video/mp4", "content-length": String(bytes.byteLength) });
			return res.end(bytes);
		}
		if (req.method === "GET" && path === "/system_stats") {
			return send(res, 200, {
				system: { os: "posix", comfyui_version: "0.38.1", python_version: "3.12.3", pytorch_version: "2.8.0" },
				devices: [
					{
						name: "cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync",
						type: "cuda",
						index: 0,
						vram_total: 25_386_352_640,
						vram_free: 24_000_000_000,
					},
				],
			});
		}
		return send(res, 404, { error: "not found" });
	}

	const server = await serveOnLoopback(handle);
	const port = server.port;
	return {
		url: `http://127.0.0.1:${port}`,
		token,
		addToken: (t) => tokens.add(t),
		close: () => server.close(),
	};
}
