import { createRoute, z } from "@hono/zod-openapi";
import { newRouter } from "../app";
import { requireAdmin } from "../auth/middleware";
import { storedConfig } from "../backends/config";
import { whyNotServed } from "../backends/routing";
import { type BackendRow, getBackend, listBackends } from "../db/backends";
import { ApiError, notFound, problemResponses } from "../errors";
import { nowIso } from "../lib/ids";
import { openJson } from "../lib/secret-box";
import { type ModelHistory, modelHistory, registerModel, retire } from "../models/catalog";
import { checkManifestLive } from "../models/live-check";
import { MODEL_ID, type ModelManifest, ModelManifestSchema } from "../models/manifest";
import type { ObjectInfo } from "../models/object-info";
import { ModelIdParamSchema } from "./models";

const security = [{ adminToken: [] }];

const AdminModelSchema = z
	.object({
		manifest: ModelManifestSchema,
		source: z.enum(["shipped", "registered"]).openapi({
			description: "`shipped`: models/*.json as released; `registered`: put through this API.",
		}),
		retired_at: z.string().nullable(),
		versions: z
			.array(
				z.object({
					version: z.string(),
					digest: z.string().openapi({ description: "sha256 of the manifest's canonical JSON." }),
					created_at: z.string().nullable(),
					source: z.enum(["shipped", "registered"]),
				}),
			)
			.openapi({ description: "Every version the model has had; jobs record the one they ran (`model_version`)." }),
		backends: z
			.array(
				z.object({
					name: z.string(),
					kind: z.string(),
					enabled: z.boolean(),
					serves: z.boolean(),
					reason: z
						.string()
						.optional()
						.openapi({ example: "it lacks files unet/Wan2.2-I2V-A14B-HighNoise-Q4_K_M.gguf" }),
				}),
			)
			.openapi({
				description:
					"Whether each backend would run the current version, and why not: its kind, its models list, what its " +
					"GPU worker advertised at the last health check (files, node classes), its GPU memory.",
			}),
	})
	.openapi("AdminModel");

const WorkflowProblemSchema = z.object({
	node: z.string(),
	class_type: z.string(),
	input: z.string().optional(),
	rule: z.string().openapi({ example: "not_in_list" }),
	detail: z.string(),
});

const ValidationReportSchema = z
	.object({
		model: z.string(),
		version: z.string(),
		backend: z.string(),
		ok: z.boolean().openapi({ description: "ComfyUI on that backend would run the workflow for any valid input." }),
		problems: z.array(WorkflowProblemSchema),
		missing_files: z.array(z.object({ folder: z.string(), name: z.string() })),
		missing_nodes: z.array(
			z.object({ class_type: z.string(), repository: z.string().nullable(), commit: z.string().nullable() }),
		),
	})
	.openapi("ModelValidation");

const ValidateBodySchema = z
	.object({
		backend: z
			.string()
			.regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/)
			.openapi({ description: "A `comfyui` backend whose live `/object_info` the workflow is checked against." }),
		manifest: ModelManifestSchema.optional().openapi({
			description: "A manifest to check before registering it; default: the model's current one.",
		}),
	})
	.strict()
	.openapi("ModelValidateRequest");

const getRoute = createRoute({
	method: "get",
	path: "/v1/admin/models/{id}",
	tags: ["Admin"],
	summary: "A model's manifest (workflow, files, custom nodes) and every version it has had",
	security,
	middleware: [requireAdmin] as const,
	request: { params: ModelIdParamSchema },
	responses: {
		200: { description: "The model", content: { "application/json": { schema: AdminModelSchema } } },
		...problemResponses(401, 403, 404),
	},
});

const putRoute = createRoute({
	method: "put",
	path: "/v1/admin/models/{id}",
	tags: ["Admin"],
	summary: "Register a model, or a new version of one, from its manifest",
	description:
		"The manifest becomes the version new jobs run (docs/models.md). Versions are immutable: the same version " +
		"with the same content re-activates it (a retired model comes back), with other content it is a 409.",
	security,
	middleware: [requireAdmin] as const,
	request: {
		params: ModelIdParamSchema,
		body: { required: true, content: { "application/json": { schema: ModelManifestSchema } } },
	},
	responses: {
		200: {
			description: "An existing version, now current",
			content: { "application/json": { schema: AdminModelSchema } },
		},
		201: { description: "A new version, now current", content: { "application/json": { schema: AdminModelSchema } } },
		...problemResponses(400, 401, 403, 409),
	},
});

const deleteRoute = createRoute({
	method: "delete",
	path: "/v1/admin/models/{id}",
	tags: ["Admin"],
	summary: "Retire a model: new jobs can no longer name it; jobs already accepted finish",
	security,
	middleware: [requireAdmin] as const,
	request: { params: ModelIdParamSchema },
	responses: { 204: { description: "Retired" }, ...problemResponses(401, 403, 404) },
});

const validateRoute = createRoute({
	method: "post",
	path: "/v1/admin/models/{id}/validate",
	tags: ["Admin"],
	summary: "Check a model's workflow against a backend's live ComfyUI node definitions, without running it",
	description:
		"Reads the backend's `GET /object_info` and checks node types, input names, types, ranges and links the way " +
		"ComfyUI validates a prompt, each parameter's range against the node input it fills, and lists the weight " +
		"files and custom nodes the server lacks.",
	security,
	middleware: [requireAdmin] as const,
	request: {
		params: ModelIdParamSchema,
		body: { required: true, content: { "application/json": { schema: ValidateBodySchema } } },
	},
	responses: {
		200: { description: "The report", content: { "application/json": { schema: ValidationReportSchema } } },
		...problemResponses(400, 401, 403, 404, 409, 503),
	},
});

async function adminView(env: Env, history: ModelHistory): Promise<z.infer<typeof AdminModelSchema>> {
	const model = history.entry.manifest;
	const backends = (await listBackends(env.DB)).map((row) => {
		const reason = whyNotServed(row, model);
		return {
			name: row.name,
			kind: row.kind,
			enabled: row.enabled === 1,
			serves: reason === null,
			...(reason ? { reason } : {}),
		};
	});
	return {
		manifest: model,
		source: history.entry.source,
		retired_at: history.entry.retired_at,
		versions: history.versions,
		backends,
	};
}

function checkedId(id: string): string {
	if (!MODEL_ID.test(id)) throw notFound(`Model ${JSON.stringify(id)}`);
	return id;
}

/** Time allowed for `/object_info`: the real one is a few MB, built by importing every node class. */
const OBJECT_INFO_TIMEOUT_MS = 30_000;

/** Where the backend's ComfyUI answers: a `comfyui` backend's URL, or a vast.ai backend's running instance. */
async function comfyOf(env: Env, row: BackendRow): Promise<{ base: string; token: string | null }> {
	const stored = storedConfig(row, await openJson(env.BACKEND_SECRETS_KEY, row.secrets));
	if (stored.kind === "comfyui") return { base: stored.config.url, token: stored.config.token ?? null };
	if (stored.kind === "vastai") {
		const state = await env.BACKENDS.getByName(row.name).vastInstance(false);
		if (state?.status !== "ready" || !state.url) {
			throw new ApiError(
				"conflict",
				`Backend "${row.name}" has no vast.ai instance up: its ComfyUI can be checked while one runs.`,
			);
		}
		return { base: state.url, token: state.password };
	}
	throw new ApiError(
		"conflict",
		`Backend "${row.name}" is a ${row.kind} backend; the check reads the /object_info of a comfyui backend or a vast.ai instance.`,
	);
}

/** The backend's live node definitions. Only a ComfyUI server answers `/object_info`. */
async function readObjectInfo(env: Env, row: BackendRow): Promise<ObjectInfo> {
	const { base, token } = await comfyOf(env, row);
	const headers = new Headers();
	if (token) headers.set("authorization", `Bearer ${token}`);
	const url = `${base.replace(/\/+$/, "")}/object_info`;
	let res: Response;
	try {
		res = await fetch(url, { headers, signal: AbortSignal.timeout(OBJECT_INFO_TIMEOUT_MS) });
	} catch (err) {
		const why = err instanceof Error && err.name === "TimeoutError" ? "did not answer in time" : "is unreachable";
		throw new ApiError("backend_unavailable", `Backend "${row.name}" ${why}: its /object_info could not be read.`);
	}
	let body: unknown = null;
	if (res.ok) body = await res.json().catch(() => null);
	else await res.body?.cancel();
	if (typeof body !== "object" || body === null || Array.isArray(body)) {
		const what = res.ok ? "not a JSON object" : `HTTP ${res.status}`;
		throw new ApiError("backend_unavailable", `Backend "${row.name}" answered /object_info with ${what}.`);
	}
	return body as ObjectInfo;
}

export const adminModelsRoutes = newRouter()
	.openapi(getRoute, async (c) => {
		const id = checkedId(c.req.valid("param").id);
		const history = await modelHistory(c.env, id);
		if (!history) throw notFound(`Model ${JSON.stringify(id)}`);
		return c.json(await adminView(c.env, history), 200);
	})
	.openapi(putRoute, async (c) => {
		const { id } = c.req.valid("param");
		const manifest = c.req.valid("json");
		if (manifest.id !== id) {
			throw new ApiError("invalid_request", `The manifest's id is "${manifest.id}", the path names "${id}".`, {
				errors: [{ path: "json.id", message: `must be "${id}", the id in the path` }],
			});
		}
		const result = await registerModel(c.env, manifest, nowIso());
		if (!result.ok) throw new ApiError("conflict", result.detail);
		c.get("log").info("model_registered", { model: id, version: manifest.version, created: result.created });
		const history = await modelHistory(c.env, id);
		if (!history) throw new ApiError("internal", "The model was not stored.");
		const view = await adminView(c.env, history);
		return result.created ? c.json(view, 201) : c.json(view, 200);
	})
	.openapi(deleteRoute, async (c) => {
		const id = checkedId(c.req.valid("param").id);
		if (!(await retire(c.env, id, nowIso()))) throw notFound(`Model ${JSON.stringify(id)}`);
		c.get("log").info("model_retired", { model: id });
		return c.body(null, 204);
	})
	.openapi(validateRoute, async (c) => {
		const id = checkedId(c.req.valid("param").id);
		const body = c.req.valid("json");
		let manifest: ModelManifest;
		if (body.manifest) {
			if (body.manifest.id !== id) {
				throw new ApiError("invalid_request", `The manifest's id is "${body.manifest.id}", the path names "${id}".`, {
					errors: [{ path: "json.manifest.id", message: `must be "${id}", the id in the path` }],
				});
			}
			manifest = body.manifest;
		} else {
			const history = await modelHistory(c.env, id);
			if (!history) throw notFound(`Model ${JSON.stringify(id)}`);
			manifest = history.entry.manifest;
		}
		if (manifest.kind !== "comfyui") {
			throw new ApiError("conflict", `${id} is a builtin model: it has no ComfyUI workflow to check.`);
		}
		const row = await getBackend(c.env.DB, body.backend);
		if (!row) {
			throw new ApiError("invalid_request", `Backend "${body.backend}" does not exist.`, {
				errors: [{ path: "json.backend", message: "unknown backend" }],
			});
		}
		const report = checkManifestLive(manifest, await readObjectInfo(c.env, row));
		return c.json({ model: id, version: manifest.version, backend: row.name, ...report }, 200);
	});
