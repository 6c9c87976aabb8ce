/**
 * TEST DOUBLE: a small TypeScript emulator of ComfyUI's HTTP API
 * (https://github.com/Comfy-Org/ComfyUI/blob/v0.8.0/server.py) for the `comfyui` backend
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
 * `GET /view?filename&subfolder&type`; `GET /system_stats` (an RTX 4090, or an H100 80GB under the base path
 * `/h100`); `GET /object_info` (the recorded v0.8.0 one); `GET /models/{folder}` → the file names in that model
 * folder: every weight file the shipped manifests (models/*.json) list there, as if all were present (404 for a
 * folder ComfyUI does not know). A token added with `modelsAfter: N` (a vast.ai instance still fetching its models)
 * sees each folder empty for its first N listings of it.
 *
 * Each `/history/{id}` call moves that prompt one step: pending → running → finished. Clock mode (`tickMs`): a timer
 * moves every live prompt one step per tick instead, and `/history` only reports (many jobs polled slowly still
 * drain the queue). Either way one prompt runs at a time, oldest first, as in ComfyUI.
 *
 * Faults come from `#emu:` tokens in the workflow's text inputs (the prompt), and follow the prompt text across
 * submissions (a resubmitted job meets them again):
 *   `reject`        /prompt answers 400 value_not_in_list (every submission)
 *   `error`         the prompt ends with an execution_error (every submission)
 *   `slow=N`        N more steps pending
 *   `vanish[*N]`    the running prompt is forgotten, as after a ComfyUI restart: every submission, or the first N
 *   `chunked`       `/view` without a content-length
 *   `noutput`       success without a video
 *   `size=N`        the video is N bytes (with `videoSeed: "prompt"`)
 * and, like a vast.ai/RunPod pod's Caddy in front of a ComfyUI that is restarting or stalled (its event loop starved
 * by a model load), per route and counted per prompt text (COUNT default 1):
 *   `prompt=CODE[*COUNT]`   `POST /prompt` answers CODE (502: Caddy's empty-bodied Bad Gateway) unqueued
 *   `prompt=timeout`        `POST /prompt` queues the prompt, but the answer never comes
 *   `history=CODE|timeout`  `GET /history/{id}` answers CODE, or nothing
 *   `view=CODE|timeout`     `GET /view` of the prompt's video answers CODE, or nothing
 * `videoSeed: "prompt"` makes the video `fakeVideo(prompt, size)` (the positive prompt's text), so a client that
 * knows the prompt knows the bytes; by default it is `fakeVideo(prompt_id)`.
 */
import { readdirSync, readFileSync } from "node:fs";
import { type Json, type NodeRequest, type NodeResponse, readBody, sendJson, serveOnLoopback } from "../loopback-http";
import { fakeVideo } from "../pod/server";

export interface ComfyEmulatorOptions {
	token?: string;
	/** Clock mode: every live prompt moves one step each `tickMs` (see the file comment); default: per `/history`. */
	tickMs?: number;
	/** What the video's bytes derive from: the prompt id (default) or the positive prompt's text. */
	videoSeed?: "id" | "prompt";
}

export interface ComfyEmulator {
	url: string;
	token: string;
	/** How many times each fault was served (by directive, e.g. `history=502`), for a test's tally. */
	injected(): Record<string, number>;
	/** The prompt ids queued again while still known (queued, running or in the history): a job run twice. */
	queuedTwice(): string[];
	/** Accepts another Bearer token too (a vast.ai instance's WEB_PASSWORD, see ../vastai/server.ts). */
	addToken(token: string, options?: { modelsAfter?: number }): void;
	close(): Promise<void>;
}

/**
 * The node classes of ComfyUI v0.8.0 as recorded (test/data/comfyui-object-info.json, no models installed): what
 * `GET /object_info` answers and which classes `POST /prompt` knows.
 */
const OBJECT_INFO = (
	JSON.parse(readFileSync(new URL("../../data/comfyui-object-info.json", import.meta.url), "utf8")) as {
		nodes: Record<string, unknown>;
	}
).nodes;
const KNOWN_NODES = new Set(Object.keys(OBJECT_INFO));

interface Prompt {
	id: string;
	number: number;
	graph: Record<string, { class_type: string; inputs: Json }>;
	/** Every text input joined: where the `#emu:` directives are read. */
	text: string;
	/** The positive prompt's text (what `videoSeed: "prompt"` seeds the video with). */
	positive: string;
	state: "pending" | "running" | "success" | "error" | "interrupted";
	steps: number;
	file?: { filename: string; subfolder: string };
	startedAt?: number;
}

const directive = (text: string, name: string) => new RegExp(`#emu:${name}(?:=(\\w+))?`).exec(text);
/** A directive with its count: `#emu:NAME[=VALUE][*COUNT]`. */
const counted = (text: string, name: string) => {
	const m = new RegExp(`#emu:${name}(?:=(\\w+))?(?:\\*(\\d+))?`).exec(text);
	return m ? { value: m[1], count: m[2] === undefined ? undefined : Number(m[2]) } : undefined;
};

/** The text of the CLIPTextEncode wired to a `positive` input (the user's prompt), if the graph has one. */
function positiveText(graph: Prompt["graph"]): string | undefined {
	for (const node of Object.values(graph)) {
		const link = node.inputs?.positive;
		if (!Array.isArray(link)) continue;
		const text = graph[String(link[0])]?.inputs?.text;
		if (typeof text === "string") return text;
	}
	return undefined;
}

/** Model folder → the file names the shipped manifests list there (the folders ComfyUI knows, some empty). */
function shippedModelFiles(): Map<string, string[]> {
	const out = new Map<string, string[]>(
		["checkpoints", "diffusion_models", "loras", "text_encoders", "vae", "audio_encoders", "clip_vision"].map((f) => [
			f,
			[],
		]),
	);
	const dir = new URL("../../../models/", import.meta.url);
	for (const entry of readdirSync(dir)) {
		if (!entry.endsWith(".json") || entry === "manifest.schema.json") continue;
		const manifest = JSON.parse(readFileSync(new URL(entry, dir), "utf8")) as {
			files?: { folder: string; name: string }[];
		};
		for (const f of manifest.files ?? []) out.set(f.folder, [...(out.get(f.folder) ?? []), f.name]);
	}
	return out;
}

export async function startComfyEmulator(options: ComfyEmulatorOptions = {}): Promise<ComfyEmulator> {
	const token = options.token ?? "comfy-emulator-token";
	const files = new Map<string, Uint8Array>(); // "type/subfolder/name" → bytes
	const prompts = new Map<string, Prompt>();
	const tokens = new Set([token]);
	/** Per token, how many listings of each folder come back empty (an instance still fetching its weights). */
	const modelsLate = new Map<string, number>();
	const lateListings = new Map<string, number>();
	const modelFolders = shippedModelFiles();
	/** Every graph queued, kept after the prompt is deleted, for `GET /_control/prompts/{id}/graph`. */
	const graphs = new Map<string, Prompt["graph"]>();
	/** How many times each prompt id was queued (a client that posts a prompt twice runs it twice). */
	const postedIds = new Map<string, number>();
	const twice = new Set<string>();
	/** The directive text of every prompt queued (kept after it is forgotten), and of every video file written. */
	const texts = new Map<string, string>();
	const fileTexts = new Map<string, string>();
	let number = 0;
	const calls: Record<string, number> = {};
	const served = new Map<string, number>();
	const count = (name: string) => served.set(name, (served.get(name) ?? 0) + 1);
	/** Uses of each counted fault so far, per prompt text and directive. */
	const spent = new Map<string, number>();

	/** Takes one use of a counted fault for this prompt text; its directive while uses are left. */
	function take(text: string, name: string, defaultCount: number) {
		const d = counted(text, name);
		if (!d) return undefined;
		const key = `${text}\u0000${name}`;
		const used = spent.get(key) ?? 0;
		if (used >= (d.count ?? defaultCount)) return undefined;
		spent.set(key, used + 1);
		count(d.value === undefined ? name : `${name}=${d.value}`);
		return d;
	}

	/**
	 * A proxy fault on `route` for this prompt text: Caddy's empty-bodied error status (502 unless given), or no
	 * answer at all (`timeout`, the response is left open). True when one was served.
	 */
	function proxyFault(res: NodeResponse, text: string | undefined, route: string): boolean {
		const d = text === undefined ? undefined : take(text, route, 1);
		if (!d) return false;
		if (d.value === "timeout") return true;
		res.writeHead(Number(d.value ?? 502), { server: "Caddy", "content-length": "0" });
		res.end();
		return true;
	}

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
		// Clock mode: a vanishing prompt is forgotten as it would finish (step mode: in `/history`).
		if (options.tickMs && take(p.text, "vanish", Number.POSITIVE_INFINITY)) {
			prompts.delete(p.id);
			return;
		}
		if (directive(p.text, "error")) {
			count("error");
			p.state = "error";
			return;
		}
		p.state = "success";
		if (directive(p.text, "noutput")) {
			count("noutput");
			return;
		}
		const save = Object.values(p.graph).find((n) => n.class_type === "SaveVideo");
		const prefix = String(save?.inputs.filename_prefix ?? "video/ComfyUI");
		const slash = prefix.lastIndexOf("/");
		const subfolder = slash >= 0 ? prefix.slice(0, slash) : "";
		const filename = `${prefix.slice(slash + 1)}_00001_.mp4`;
		const size = directive(p.text, "size")?.[1];
		const seed = options.videoSeed === "prompt" ? p.positive : p.id;
		files.set(fileKey("output", subfolder, filename), size ? fakeVideo(seed, Number(size)) : fakeVideo(seed));
		fileTexts.set(filename, p.text);
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
		// Under `/h100` the server is an 80 GB card; anywhere else a 24 GB RTX 4090 (what routing by GPU memory reads).
		const h100 = /^\/h100(?=\/)/.test(url.pathname);
		const path = url.pathname.replace(/^\/h100(?=\/)/, "").replace(/^\/api(?=\/)/, "");
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
			const posted = postedIds.get(control[1] ?? "") ?? 0;
			// `posted` outlives the prompt (a finished one is deleted from the history by its client).
			return p ? send(res, 200, { id: p.id, state: p.state, steps: p.steps, posted }) : send(res, 404, { posted });
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
			// Caddy's error never reached ComfyUI; a timeout is an answer lost after the prompt was queued.
			const hangs = counted(text, "prompt")?.value === "timeout";
			if (!hangs && proxyFault(res, text, "prompt")) return;
			const invalid = validate(graph, text);
			if (invalid) {
				if (directive(text, "reject")) count("reject");
				return send(res, 400, invalid);
			}
			const id = typeof body.prompt_id === "string" ? body.prompt_id : crypto.randomUUID();
			postedIds.set(id, (postedIds.get(id) ?? 0) + 1);
			// Queued again while the first is still known; after a restart forgot it, queueing it anew is right.
			if (prompts.has(id)) twice.add(id);
			number += 1;
			const positive = positiveText(graph) ?? text;
			prompts.set(id, { id, number, graph, text, positive, state: "pending", steps: 0 });
			graphs.set(id, graph);
			texts.set(id, text);
			if (directive(text, "slow")) count("slow");
			if (hangs && proxyFault(res, text, "prompt")) return;
			return send(res, 200, { prompt_id: id, number, node_errors: {} });
		}
		if (req.method === "GET" && path === "/prompt") {
			const remaining = [...prompts.values()].filter((p) => p.state === "pending" || p.state === "running").length;
			return send(res, 200, { exec_info: { queue_remaining: remaining } });
		}
		const hist = /^\/history\/([^/]+)$/.exec(path);
		if (req.method === "GET" && hist) {
			const id = decodeURIComponent(hist[1] ?? "");
			if (proxyFault(res, texts.get(id), "history")) return;
			const p = prompts.get(id);
			if (!p) return send(res, 200, {});
			if (!options.tickMs && p.state === "running" && take(p.text, "vanish", Number.POSITIVE_INFINITY)) {
				prompts.delete(p.id);
				return send(res, 200, {});
			}
			const answer = p.state === "pending" || p.state === "running" ? {} : { [p.id]: historyEntry(p) };
			if (!options.tickMs) advance(p);
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
			const owner = fileTexts.get(q.get("filename") ?? "");
			if (proxyFault(res, owner, "view")) return;
			if (owner !== undefined && directive(owner, "chunked")) {
				count("chunked");
				res.writeHead(200, { "content-type": "video/mp4" });
				res.write(bytes.subarray(0, 1000));
				return res.end(bytes.subarray(1000));
			}
			res.writeHead(200, { "content-type": "video/mp4", "content-length": String(bytes.byteLength) });
			return res.end(bytes);
		}
		const folder = /^\/models\/([\w-]+)$/.exec(path);
		if (req.method === "GET" && folder) {
			const names = modelFolders.get(folder[1] ?? "");
			if (!names) return send(res, 404, {});
			const caller = String(req.headers.authorization ?? "").replace(/^Bearer /, "");
			const seen = `${caller}/${folder[1]}`;
			const listings = (lateListings.get(seen) ?? 0) + 1;
			lateListings.set(seen, listings);
			if (listings <= (modelsLate.get(caller) ?? 0)) return send(res, 200, []);
			return send(res, 200, names);
		}
		if (req.method === "GET" && path === "/object_info") return send(res, 200, OBJECT_INFO);
		if (req.method === "GET" && path === "/system_stats") {
			return send(res, 200, {
				system: { os: "posix", comfyui_version: "0.38.1", python_version: "3.12.3", pytorch_version: "2.8.0" },
				devices: [
					h100
						? {
								name: "cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync",
								type: "cuda",
								index: 0,
								vram_total: 85_520_809_984,
								vram_free: 84_000_000_000,
							}
						: {
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
	// Clock mode: prompts in queue order, so the running one finishes before the next starts.
	const clock = options.tickMs
		? setInterval(() => {
				for (const p of [...prompts.values()]) advance(p);
			}, options.tickMs)
		: undefined;
	return {
		url: `http://127.0.0.1:${port}`,
		token,
		addToken: (t, o) => {
			tokens.add(t);
			if (o?.modelsAfter) modelsLate.set(t, o.modelsAfter);
		},
		injected: () => Object.fromEntries(served),
		queuedTwice: () => [...twice],
		close: () => {
			clearInterval(clock);
			return server.close();
		},
	};
}
