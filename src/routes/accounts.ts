import { createRoute, z } from "@hono/zod-openapi";
import { newRouter } from "../app";
import { requireAdmin, requireKey } from "../auth/middleware";
import { configOf } from "../config";
import { type AccountLimitOverrides, getAccountLimits, spendBetween, updateAccountLimits } from "../db/accounts";
import { activeJobCount } from "../db/job-slots";
import { activeKeyHashes, findKeyById } from "../db/keys";
import { notFound, problemResponses } from "../errors";
import { forgetKeys } from "../limits/admission";
import { effectiveLimits, utcMonth } from "../limits/config";

const limitOf = <T extends z.ZodType>(value: T) =>
	z.object({
		value,
		source: z.enum(["account", "default"]).openapi({ description: "`default`: the Worker-wide default applies." }),
	});

const LimitsSchema = z
	.object({
		requests_per_minute: limitOf(z.number().int()).openapi({
			description: "Requests per minute per API key (a token bucket whose burst is the full quota).",
		}),
		jobs_per_minute: limitOf(z.number().int()).openapi({
			description: "Job creations per minute per API key, counted in addition to requests.",
		}),
		max_concurrent_jobs: limitOf(z.number().int()).openapi({ description: "Jobs queued or running at once." }),
		monthly_spend_cap_usd: limitOf(z.number().nullable()).openapi({
			description: "New jobs are refused (402) once this UTC month's recorded cost reaches it; null: no cap.",
		}),
	})
	.openapi("Limits");

export const AccountLimitsSchema = z
	.object({
		account: z.string(),
		limits: LimitsSchema,
		month: z.string().openapi({ example: "2026-11", description: "The current UTC calendar month." }),
		month_spend_usd: z.number().openapi({ description: "Recorded cost of the jobs finished this month." }),
		active_jobs: z.number().int().openapi({ description: "Jobs queued or running now." }),
	})
	.openapi("AccountLimits");

const BucketSchema = z.object({ quota: z.number().int(), remaining: z.number().int(), reset_s: z.number().int() });

export const OwnLimitsSchema = AccountLimitsSchema.extend({
	key: z
		.object({ id: z.string(), name: z.string(), scopes: z.array(z.string()) })
		.openapi({ description: "The key this request used: what a client shows to say whose key it holds." }),
	rate_limit: z
		.object({ requests: BucketSchema.optional() })
		.nullable()
		.openapi({ description: "This key's request bucket after this request; null when the limiter was unreachable." }),
}).openapi("OwnLimits");

const rate = (max: number) => z.number().int().min(1).max(max).nullable().optional();

export const PutLimitsBodySchema = z
	.object({
		requests_per_minute: rate(1_000_000),
		jobs_per_minute: rate(1_000_000),
		max_concurrent_jobs: z
			.number()
			.int()
			.min(0)
			.max(1_000_000)
			.nullable()
			.optional()
			.openapi({ description: "0 refuses every new job." }),
		monthly_spend_cap_usd: z
			.number()
			.min(0)
			.max(1e9)
			.nullable()
			.optional()
			.openapi({ description: "USD; 0 refuses every new job." }),
	})
	.strict()
	.openapi("PutLimitsRequest", { description: "Fields left out keep their value; null goes back to the default." });

const AccountParamSchema = z.object({
	account: z
		.string()
		.regex(/^[A-Za-z0-9_-]{1,64}$/, "letters, digits, '_' and '-', at most 64")
		.openapi({ param: { name: "account", in: "path" }, example: "acme" }),
});

/** The limits view: effective limits, this month's spend and the jobs holding a slot. */
async function limitsView(
	env: Env,
	accountId: string,
	overrides: AccountLimitOverrides,
	now = new Date(),
): Promise<z.infer<typeof AccountLimitsSchema>> {
	const month = utcMonth(now);
	const [spent, active] = await Promise.all([
		spendBetween(env.DB, accountId, month.from, month.to),
		activeJobCount(env.DB, accountId, now.getTime()),
	]);
	return {
		account: accountId,
		limits: effectiveLimits(overrides, configOf(env).limits),
		month: month.month,
		month_spend_usd: spent,
		active_jobs: active,
	};
}

const limitsJson = { "application/json": { schema: AccountLimitsSchema } };

const getAccountLimitsRoute = createRoute({
	method: "get",
	path: "/v1/admin/accounts/{account}/limits",
	summary: "An account's limits, this month's spend and its active jobs",
	tags: ["Admin"],
	security: [{ adminToken: [] }],
	middleware: [requireAdmin] as const,
	request: { params: AccountParamSchema },
	responses: { 200: { description: "The limits", content: limitsJson }, ...problemResponses(400, 401, 403, 404) },
});

const putAccountLimitsRoute = createRoute({
	method: "put",
	path: "/v1/admin/accounts/{account}/limits",
	summary: "Set an account's limits (null: back to the default); takes effect on the next request",
	tags: ["Admin"],
	security: [{ adminToken: [] }],
	middleware: [requireAdmin] as const,
	request: {
		params: AccountParamSchema,
		body: { required: true, content: { "application/json": { schema: PutLimitsBodySchema } } },
	},
	responses: { 200: { description: "The limits", content: limitsJson }, ...problemResponses(400, 401, 403, 404) },
});

const ownLimitsRoute = createRoute({
	method: "get",
	path: "/v1/limits",
	tags: ["Limits"],
	summary: "Your limits, this month's spend, your active jobs and this key's request bucket",
	security: [{ apiKey: [] }],
	middleware: [requireKey("jobs:read")] as const,
	responses: {
		200: { description: "The limits", content: { "application/json": { schema: OwnLimitsSchema } } },
		...problemResponses(401, 403),
	},
});

export const accountsRoutes = newRouter()
	.openapi(getAccountLimitsRoute, async (c) => {
		const { account } = c.req.valid("param");
		const overrides = await getAccountLimits(c.env.DB, account);
		if (!overrides) throw notFound("Account");
		return c.json(await limitsView(c.env, account, overrides), 200);
	})
	.openapi(putAccountLimitsRoute, async (c) => {
		const { account } = c.req.valid("param");
		if (!(await updateAccountLimits(c.env.DB, account, c.req.valid("json")))) throw notFound("Account");
		const overrides = await getAccountLimits(c.env.DB, account);
		if (!overrides) throw notFound("Account");
		// The keys' gates keep the limits they last read: make them read again on the next request. One that cannot
		// be told now picks the change up within KEY_ROW_TTL_MS.
		try {
			await forgetKeys(c.env, await activeKeyHashes(c.env.DB, account));
		} catch (err) {
			c.get("log").error("limits_not_propagated", { account, error: err instanceof Error ? err.message : String(err) });
		}
		c.get("log").info("account_limits_set", { account, limits: overrides });
		return c.json(await limitsView(c.env, account, overrides), 200);
	})
	.openapi(ownLimitsRoute, async (c) => {
		const { accountId, keyId, scopes } = c.get("caller");
		const [overrides, key] = await Promise.all([getAccountLimits(c.env.DB, accountId), findKeyById(c.env.DB, keyId)]);
		if (!overrides) throw notFound("Account");
		const requests = c.get("rateLimit")?.buckets.find((b) => b.name === "requests");
		const view = await limitsView(c.env, accountId, overrides);
		return c.json(
			{
				...view,
				key: { id: keyId, name: key?.name ?? "", scopes },
				rate_limit: c.get("rateLimit")
					? {
							requests: requests && { quota: requests.quota, remaining: requests.remaining, reset_s: requests.reset_s },
						}
					: null,
			},
			200,
		);
	});
