import { createRoute, z } from "@hono/zod-openapi";
import { newRouter } from "../app";
import { displayPrefix, generateApiKey, hashApiKey } from "../auth/api-keys";
import { requireAdmin } from "../auth/middleware";
import { type ApiKeyRow, ensureAccount, findKeyById, insertKey, listKeys, parseScopes, revokeKey } from "../db/keys";
import { notFound, problemResponses } from "../errors";
import { newId, nowIso } from "../lib/ids";
import { forgetKeys } from "../limits/admission";
import { CreatedKeySchema, CreateKeyBodySchema, DEFAULT_SCOPES, KeySchema } from "../schemas/keys";

function toKey(row: ApiKeyRow): z.infer<typeof KeySchema> {
	return {
		id: row.id,
		name: row.name,
		account: row.account_id,
		scopes: parseScopes(row.scopes),
		prefix: row.prefix,
		created_at: row.created_at,
		last_used_at: row.last_used_at,
		revoked_at: row.revoked_at,
	};
}

const security = [{ adminToken: [] }];

const createKey = createRoute({
	method: "post",
	path: "/v1/admin/keys",
	tags: ["Admin"],
	summary: "Create an API key (the key is shown once)",
	security,
	middleware: [requireAdmin] as const,
	request: { body: { required: true, content: { "application/json": { schema: CreateKeyBodySchema } } } },
	responses: {
		201: { description: "Created", content: { "application/json": { schema: CreatedKeySchema } } },
		...problemResponses(400, 401, 403),
	},
});

const listKeysRoute = createRoute({
	method: "get",
	path: "/v1/admin/keys",
	tags: ["Admin"],
	summary: "List API keys (never the secrets)",
	security,
	middleware: [requireAdmin] as const,
	responses: {
		200: {
			description: "Keys",
			content: { "application/json": { schema: z.object({ data: z.array(KeySchema) }).openapi("ApiKeyList") } },
		},
		...problemResponses(401, 403),
	},
});

const revokeKeyRoute = createRoute({
	method: "delete",
	path: "/v1/admin/keys/{id}",
	tags: ["Admin"],
	summary: "Revoke an API key (effective at once)",
	security,
	middleware: [requireAdmin] as const,
	request: { params: z.object({ id: z.string().max(64) }) },
	responses: {
		200: { description: "Revoked", content: { "application/json": { schema: KeySchema } } },
		...problemResponses(401, 403, 404),
	},
});

/** Creates an account (if new) and a key for it; shared by the admin route and `npm run keys`. */
export async function createApiKey(
	db: D1Database,
	input: z.infer<typeof CreateKeyBodySchema>,
): Promise<z.infer<typeof CreatedKeySchema>> {
	const now = nowIso();
	const accountId = input.account ?? newId("acct");
	const scopes = input.scopes ? [...new Set(input.scopes)] : DEFAULT_SCOPES;
	const key = generateApiKey();
	const id = newId("key");
	await ensureAccount(db, accountId, now);
	await insertKey(db, {
		id,
		accountId,
		name: input.name,
		prefix: displayPrefix(key),
		keyHash: await hashApiKey(key),
		scopes,
		now,
	});
	return { id, key, name: input.name, account: accountId, scopes, prefix: displayPrefix(key), created_at: now };
}

export const keysRoutes = newRouter()
	.openapi(createKey, async (c) => c.json(await createApiKey(c.env.DB, c.req.valid("json")), 201))
	.openapi(listKeysRoute, async (c) => c.json({ data: (await listKeys(c.env.DB)).map(toKey) }, 200))
	.openapi(revokeKeyRoute, async (c) => {
		const id = c.req.valid("param").id;
		const existing = await findKeyById(c.env.DB, id);
		if (!existing) throw notFound("Key");
		// The key's gate first: from this call on the key is refused, whether or not D1 has caught up. If the gate
		// cannot be reached this fails before anything changed, and the revocation can simply be retried.
		await forgetKeys(c.env, [existing.key_hash], { revoked: true });
		const row = await revokeKey(c.env.DB, id, nowIso());
		if (!row) throw notFound("Key");
		return c.json(toKey(row), 200);
	});
