import { createRoute, z } from "@hono/zod-openapi";
import { newRouter } from "../app";
import { requireAdmin } from "../auth/middleware";
import { PutBackendBodySchema, requiredSecrets, secretFields, splitConfig } from "../backends/config";
import { buildBackend, parseModels } from "../backends/registry";
import {
	type BackendRow,
	deleteBackend,
	getBackend,
	listBackends,
	setBackendEnabled,
	setBackendHealth,
	upsertBackend,
} from "../db/backends";
import { ApiError, notFound, problemResponses } from "../errors";
import { nowIso } from "../lib/ids";
import { openJson, sealJson } from "../lib/secret-box";
import { BACKEND_KINDS } from "../schemas/backends";

/**
 * Jobs admitted at once when the backend does not say: RunPod endpoints and pods queue jobs themselves, so this
 * bounds what is outstanding there rather than matching a GPU count; set `max_concurrency` to enforce a real limit.
 */
export const DEFAULT_MAX_CONCURRENCY = 10;

const HealthSchema = z.object({
	reachable: z.boolean(),
	latency_ms: z.number(),
	details: z.record(z.string(), z.unknown()),
	checked_at: z.string().optional(),
});

const VastStatusSchema = z
	.object({
		instance: z
			.object({ id: z.number().int(), status: z.string(), dph_total: z.number(), created_at: z.string() })
			.nullable(),
		waiting: z
			.object({
				reason: z.string().openapi({ description: "`booting`, `misconfigured` (refused key) or `no_capacity`." }),
				message: z.string().openapi({ description: "vast.ai's own words where it gave any." }),
				since: z.string(),
				no_offer_since: z.number().nullable(),
			})
			.nullable()
			.openapi({ description: "Why jobs wait for an instance; null once one is ready." }),
		deleting: z
			.object({
				since: z.string(),
				attempts: z.number().int(),
				next_at: z.string().openapi({ description: "When the destroys are tried again." }),
				remaining: z.array(z.object({ id: z.number().int(), message: z.string() })).openapi({
					description: "Instances vast.ai has not confirmed destroyed, with its answer (id 0: the list failed).",
				}),
			})
			.nullable()
			.openapi({ description: "A deletion waiting until vast.ai confirms every destroy; the backend is disabled." }),
	})
	.openapi("VastStatus");

export const BackendSchema = z
	.object({
		name: z.string(),
		kind: z.enum(BACKEND_KINDS),
		enabled: z.boolean(),
		priority: z.number().int(),
		models: z.array(z.string()),
		max_concurrency: z.number().int(),
		price_per_second_usd: z.number(),
		config: z.record(z.string(), z.unknown()).openapi({
			description: "Non-secret settings; each secret field shows only as `<field>_set: true|false`.",
		}),
		last_health: HealthSchema.nullable(),
		routing: z
			.object({
				in_flight: z.number().int(),
				waiting: z.number().int(),
				circuit: z.enum(["closed", "open", "half_open"]),
			})
			.nullable()
			.openapi({ description: "Jobs holding a slot, jobs queued for one, and the circuit breaker's state." }),
		vast: VastStatusSchema.nullable().optional().openapi({
			description:
				"A vastai backend's rental: its instance, why jobs wait, a deletion under way; null for other kinds.",
		}),
		created_at: z.string(),
		updated_at: z.string(),
	})
	.openapi("Backend");

const NameParamSchema = z.object({
	name: z
		.string()
		.regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, "letters, digits, '_', '.', '-'; at most 64")
		.openapi({ param: { name: "name", in: "path" }, example: "local-pod" }),
});

/** The backend's live load and breaker (its BackendDO); null when that cannot be read right now. */
async function routingOf(
	env: Env,
	name: string,
): Promise<{ in_flight: number; waiting: number; circuit: "closed" | "open" | "half_open" } | null> {
	try {
		const s = await env.BACKENDS.getByName(name).snapshot();
		return { in_flight: s.in_flight, waiting: s.waiting, circuit: s.breaker.state };
	} catch {
		return null;
	}
}

/** A vastai backend's rental as its BackendDO keeps it; null for other kinds or when it cannot be read now. */
async function vastOf(env: Env, row: BackendRow): Promise<z.infer<typeof VastStatusSchema> | null> {
	if (row.kind !== "vastai") return null;
	try {
		return await env.BACKENDS.getByName(row.name).vastStatus();
	} catch {
		return null;
	}
}

/** The public view of a backend: secrets never leave, only whether each is set. */
async function toBackend(env: Env, row: BackendRow): Promise<z.infer<typeof BackendSchema>> {
	const config = JSON.parse(row.config) as Record<string, unknown>;
	const secrets = await openJson(env.BACKEND_SECRETS_KEY, row.secrets);
	for (const field of secretFields(row.kind)) config[`${field}_set`] = typeof secrets[field] === "string";
	return {
		name: row.name,
		kind: row.kind,
		enabled: row.enabled === 1,
		priority: row.priority,
		models: parseModels(row),
		max_concurrency: row.max_concurrency,
		price_per_second_usd: row.price_per_second_usd,
		config,
		last_health: row.last_health ? (JSON.parse(row.last_health) as z.infer<typeof HealthSchema>) : null,
		routing: await routingOf(env, row.name),
		vast: await vastOf(env, row),
		created_at: row.created_at,
		updated_at: row.updated_at,
	};
}

const security = [{ adminToken: [] }];
const backendJson = { "application/json": { schema: BackendSchema } };

const listRoute = createRoute({
	method: "get",
	path: "/v1/admin/backends",
	tags: ["Admin"],
	summary: "List GPU backends (secrets never shown)",
	security,
	middleware: [requireAdmin] as const,
	responses: {
		200: {
			description: "Backends",
			content: { "application/json": { schema: z.object({ data: z.array(BackendSchema) }).openapi("BackendList") } },
		},
		...problemResponses(401, 403),
	},
});

const putRoute = createRoute({
	method: "put",
	path: "/v1/admin/backends/{name}",
	tags: ["Admin"],
	summary: "Create or replace a GPU backend",
	description: "Secret fields (`token`, `api_key`) are write-only: a string sets, `null` clears, absent keeps.",
	security,
	middleware: [requireAdmin] as const,
	request: {
		params: NameParamSchema,
		body: { required: true, content: { "application/json": { schema: PutBackendBodySchema } } },
	},
	responses: {
		200: { description: "The backend", content: backendJson },
		...problemResponses(400, 401, 403, 409),
	},
});

const deleteRoute = createRoute({
	method: "delete",
	path: "/v1/admin/backends/{name}",
	tags: ["Admin"],
	summary: "Delete a GPU backend",
	description:
		"A vastai backend goes only once vast.ai confirms every instance destroyed. When it refuses a destroy, the answer " +
		"is 202 with the backend, disabled and `vast.deleting` set; the destroys are retried with backoff and the backend " +
		"is deleted when none is left.",
	security,
	middleware: [requireAdmin] as const,
	request: { params: NameParamSchema },
	responses: {
		202: { description: "Deletion under way: instances still running", content: backendJson },
		204: { description: "Deleted" },
		...problemResponses(401, 403, 404),
	},
});

const testRoute = createRoute({
	method: "post",
	path: "/v1/admin/backends/{name}/test",
	tags: ["Admin"],
	summary: "Check that a backend is reachable (calls its health endpoint)",
	security,
	middleware: [requireAdmin] as const,
	request: { params: NameParamSchema },
	responses: {
		200: {
			description: "The health check",
			content: { "application/json": { schema: HealthSchema.openapi("BackendTest") } },
		},
		...problemResponses(401, 403, 404),
	},
});

export const backendsRoutes = newRouter()
	.openapi(listRoute, async (c) => {
		const rows = await listBackends(c.env.DB);
		return c.json({ data: await Promise.all(rows.map((r) => toBackend(c.env, r))) }, 200);
	})
	.openapi(putRoute, async (c) => {
		const { name } = c.req.valid("param");
		const body = c.req.valid("json");
		const existing = await getBackend(c.env.DB, name);
		const deleting = existing?.kind === "vastai" ? (await vastOf(c.env, existing))?.deleting : null;
		if (deleting) {
			// Re-enabling it would rent again while its old instances are still being destroyed.
			const running = deleting.remaining.map((r) => r.id).join(", ");
			throw new ApiError(
				"conflict",
				`Backend ${name} is being deleted: vast.ai has not confirmed instances ${running} destroyed; it goes once they are.`,
			);
		}
		const { plain, set, clear } = splitConfig(body.kind, body.config);
		// Secrets are write-only, so a client cannot echo them back: absent ones keep the stored value (same kind).
		const kept =
			existing && existing.kind === body.kind ? await openJson(c.env.BACKEND_SECRETS_KEY, existing.secrets) : {};
		const secrets: Record<string, string> = { ...kept, ...set };
		for (const field of clear) delete secrets[field];
		const missing = requiredSecrets(body.kind).filter((f) => !secrets[f]);
		if (missing.length > 0) {
			throw new ApiError("invalid_request", `A ${body.kind} backend needs ${missing.join(", ")}.`, {
				errors: missing.map((f) => ({ path: `json.config.${f}`, message: "required" })),
			});
		}
		const row = await upsertBackend(
			c.env.DB,
			{
				name,
				kind: body.kind,
				enabled: (body.enabled ?? true) ? 1 : 0,
				priority: body.priority ?? 0,
				models: JSON.stringify(body.models ?? []),
				max_concurrency: body.max_concurrency ?? DEFAULT_MAX_CONCURRENCY,
				price_per_second_usd: body.price_per_second_usd ?? 0,
				config: JSON.stringify(plain),
				secrets: Object.keys(secrets).length > 0 ? await sealJson(c.env.BACKEND_SECRETS_KEY, secrets) : null,
			},
			nowIso(),
		);
		if (!row) throw new ApiError("internal", "The backend was not stored.");
		c.get("log").info("backend_saved", { backend: name, kind: body.kind });
		// A new configuration (a fixed key, say) is judged afresh: what the breaker learned of the old one goes.
		try {
			await c.env.BACKENDS.getByName(name).configChanged();
		} catch (err) {
			c.get("log").warn("breaker_reset_failed", {
				backend: name,
				error: err instanceof Error ? err.message : String(err),
			});
		}
		return c.json(await toBackend(c.env, row), 200);
	})
	.openapi(deleteRoute, async (c) => {
		const { name } = c.req.valid("param");
		const existing = await getBackend(c.env.DB, name);
		if (!existing) throw notFound("Backend");
		// A vastai backend rents instances: its API key must stay until vast.ai confirms each destroyed, or they would
		// bill on with nothing left to clean them up.
		if (existing.kind === "vastai") {
			const { destroyed, remaining } = await c.env.BACKENDS.getByName(name).vastShutdown(name);
			c.get("log").info("backend_instances_destroyed", { backend: name, count: destroyed.length });
			if (remaining.length > 0) {
				await setBackendEnabled(c.env.DB, name, false, nowIso());
				c.get("log").warn("backend_deletion_pending", { backend: name, remaining: remaining.map((r) => r.id) });
				const row = (await getBackend(c.env.DB, name)) ?? existing;
				return c.json(await toBackend(c.env, row), 202);
			}
			// The object may have finished an earlier deletion itself: gone either way.
			await deleteBackend(c.env.DB, name);
			return c.body(null, 204);
		}
		if (!(await deleteBackend(c.env.DB, name))) throw notFound("Backend");
		return c.body(null, 204);
	})
	.openapi(testRoute, async (c) => {
		const { name } = c.req.valid("param");
		const row = await getBackend(c.env.DB, name);
		if (!row) throw notFound("Backend");
		const report = await (await buildBackend(c.env, row)).health();
		const health = { ...report, checked_at: nowIso() };
		await setBackendHealth(c.env.DB, name, JSON.stringify(health));
		return c.json(health, 200);
	});
