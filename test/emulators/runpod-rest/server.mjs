// An emulator of RunPod's REST API (https://rest.runpod.io/v1) for the deploy tests: templates, network volumes,
// serverless endpoints and pods, in memory. Built from runpod/docs:
//   api-reference/openapi.json (schemas TemplateCreateInput, TemplateUpdateInput, NetworkVolumeCreateInput,
//     EndpointCreateInput, EndpointUpdateInput, PodCreateInput; bearer `ApiKey` security)
//   api-reference/templates/{POST/templates, GET/templates, PATCH/templates/templateId, DELETE/templates/templateId}.mdx
//   api-reference/network-volumes/{POST/networkvolumes, GET/networkvolumes, PATCH/..., DELETE/...}.mdx
//   api-reference/endpoints/{POST/endpoints, GET/endpoints, GET/endpoints/endpointId, PATCH/..., DELETE/...}.mdx
//   api-reference/pods/{POST/pods, GET/pods, GET/pods/podId, PATCH/..., POST/pods/podId/stop|start, DELETE/...}.mdx
// Create answers 200 with the object (pods 201, as documented), delete 204, unknown ids 404, a missing
// required field 400. Only what the deploy scripts use is modelled; defaults follow the schemas' `default`s.
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";

const newId = () => randomBytes(5).toString("hex");

const REQUIRED = {
	templates: ["name", "imageName"],
	networkvolumes: ["name", "size", "dataCenterId"],
	endpoints: ["templateId"],
	pods: [],
};

const DEFAULTS = {
	templates: {
		category: "NVIDIA",
		containerDiskInGb: 50,
		env: {},
		isPublic: false,
		isServerless: false,
		volumeInGb: 20,
		volumeMountPath: "/workspace",
		ports: [],
	},
	networkvolumes: {},
	endpoints: {
		computeType: "GPU",
		gpuCount: 1,
		idleTimeout: 5,
		scalerType: "QUEUE_DELAY",
		scalerValue: 4,
		workersMin: 0,
		workersMax: 3,
		version: 0,
	},
	pods: { desiredStatus: "RUNNING", gpuCount: 1, containerDiskInGb: 50, env: {}, costPerHr: 2.69 },
};

/**
 * Starts the emulator on a free port.
 * @param {{ apiKey?: string, port?: number }} [options]
 */
export function startRunpodRest({ apiKey = "rp-test-key", port = 0 } = {}) {
	const state = { templates: new Map(), networkvolumes: new Map(), endpoints: new Map(), pods: new Map() };
	/** Every request, for assertions: method, path, body. */
	const requests = [];

	const send = (res, status, body) => {
		res.writeHead(status, { "content-type": "application/json" });
		res.end(body === undefined ? "" : JSON.stringify(body));
	};

	const server = createServer(async (req, res) => {
		const chunks = [];
		for await (const c of req) chunks.push(c);
		const raw = Buffer.concat(chunks).toString("utf8");
		const url = new URL(req.url ?? "/", "http://x");
		let body;
		try {
			body = raw ? JSON.parse(raw) : undefined;
		} catch {
			return send(res, 400, { error: "invalid JSON" });
		}
		requests.push({ method: req.method, path: url.pathname, query: Object.fromEntries(url.searchParams), body });
		if (req.headers.authorization !== `Bearer ${apiKey}`) return send(res, 401, { error: "Unauthorized" });

		const parts = url.pathname.replace(/^\/v1/, "").split("/").filter(Boolean);
		const [kind, id, action] = parts;
		const table = state[kind];
		if (!table) return send(res, 404, { error: "not found" });

		if (!id) {
			if (req.method === "GET") {
				let list = [...table.values()];
				if (kind === "pods" && url.searchParams.get("name"))
					list = list.filter((p) => p.name === url.searchParams.get("name"));
				return send(res, 200, list);
			}
			if (req.method === "POST") {
				const missing = REQUIRED[kind].filter((f) => body?.[f] === undefined);
				if (missing.length) return send(res, 400, { error: `missing required field(s): ${missing.join(", ")}` });
				if (kind === "endpoints" && !state.templates.has(body.templateId))
					return send(res, 400, { error: "template not found" });
				if (kind === "endpoints" && body.networkVolumeId && !state.networkvolumes.has(body.networkVolumeId)) {
					return send(res, 400, { error: "network volume not found" });
				}
				const obj = { ...DEFAULTS[kind], ...body, id: newId(), createdAt: new Date().toISOString() };
				if (kind === "endpoints") obj.workers = [];
				table.set(obj.id, obj);
				return send(res, kind === "pods" ? 201 : 200, obj);
			}
			return send(res, 405, { error: "method not allowed" });
		}

		const obj = table.get(id);
		if (!obj) return send(res, 404, { error: `${kind.slice(0, -1)} ${id} not found` });
		if (action) {
			if (kind === "pods" && req.method === "POST" && (action === "stop" || action === "start")) {
				obj.desiredStatus = action === "stop" ? "EXITED" : "RUNNING";
				return send(res, 200, obj);
			}
			return send(res, 404, { error: "not found" });
		}
		if (req.method === "GET") {
			if (kind === "endpoints" && url.searchParams.get("includeWorkers") === "true") {
				return send(res, 200, {
					...obj,
					workers: Array.from({ length: obj.workersMin }, (_, i) => ({
						id: `w${i}`,
						desiredStatus: "RUNNING",
						costPerHr: "2.17",
					})),
				});
			}
			return send(res, 200, obj);
		}
		if (req.method === "PATCH") {
			if (kind === "networkvolumes" && typeof body?.size === "number" && body.size < obj.size) {
				return send(res, 400, { error: "a network volume cannot shrink" });
			}
			Object.assign(obj, body);
			return send(res, 200, obj);
		}
		if (req.method === "DELETE") {
			if (kind === "templates" && [...state.endpoints.values()].some((e) => e.templateId === id)) {
				return send(res, 400, { error: "template is in use by an endpoint" });
			}
			if (kind === "networkvolumes" && [...state.endpoints.values()].some((e) => e.networkVolumeId === id)) {
				return send(res, 400, { error: "network volume is attached to an endpoint" });
			}
			table.delete(id);
			res.writeHead(204);
			return res.end();
		}
		return send(res, 405, { error: "method not allowed" });
	});

	return new Promise((resolve) => {
		server.listen(port, "127.0.0.1", () => {
			const { port: p } = /** @type {import("node:net").AddressInfo} */ (server.address());
			resolve({
				url: `http://127.0.0.1:${p}/v1`,
				state,
				requests,
				close: () => new Promise((r) => server.close(() => r())),
			});
		});
	});
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
	const port = Number(process.argv[2] ?? 8790);
	startRunpodRest({ port, apiKey: process.env.RUNPOD_API_KEY || "rp-test-key" }).then((e) =>
		console.log(`RunPod REST emulator on ${e.url}`),
	);
}
