/**
 * The public wire shapes of API keys (the admin API's `/v1/admin/keys`): what creating one takes and what a key
 * looks like. The routes validate with these, `/openapi.json` is generated from them, the SDK infers its types
 * from them.
 */
import { z } from "@hono/zod-openapi";

/**
 * What a key may do; each route names the scope it needs. `account:admin` guards the account's credentials (the
 * webhook signing secret's rotation, the only call that shows it): never granted unless asked for.
 */
export const ScopeSchema = z.enum(["jobs:read", "jobs:write", "account:admin"]);
export type Scope = z.infer<typeof ScopeSchema>;
export const ALL_SCOPES: Scope[] = [...ScopeSchema.options];
/** A key created without `scopes` gets these: everything but the account's credentials. */
export const DEFAULT_SCOPES: Scope[] = ["jobs:read", "jobs:write"];

export const CreateKeyBodySchema = z
	.object({
		name: z.string().trim().min(1).max(100),
		account: z
			.string()
			.regex(/^[A-Za-z0-9_-]{1,64}$/, "letters, digits, '_' and '-', at most 64")
			.optional(),
		scopes: z
			.array(ScopeSchema)
			.min(1)
			.optional()
			.openapi({ description: "Default `jobs:read` and `jobs:write`; `account:admin` only when listed." }),
	})
	.strict()
	.openapi("CreateKeyRequest");

const KeyFields = {
	id: z.string().openapi({ example: "key_0f3k2l1m9n8b7v6c5x4z3a2s1d" }),
	name: z.string(),
	account: z.string(),
	scopes: z.array(ScopeSchema),
	prefix: z.string().openapi({ description: "The key's first characters, to recognise it." }),
	created_at: z.string().datetime(),
};

export const KeySchema = z
	.object({
		...KeyFields,
		last_used_at: z.string().datetime().nullable(),
		revoked_at: z.string().datetime().nullable(),
	})
	.openapi("ApiKey");

export const CreatedKeySchema = z
	.object({ ...KeyFields, key: z.string().openapi({ description: "The secret key. Shown once, never again." }) })
	.openapi("CreatedApiKey");
