import { createRoute, z } from "@hono/zod-openapi";
import { newRouter } from "../app";
import { requireKey } from "../auth/middleware";
import { type AccountSecrets, getAccountSecrets, rotateWebhookSecret, signingSecrets } from "../db/account-secrets";
import { ApiError, problemResponses } from "../errors";
import { newId } from "../lib/ids";
import { attemptDelivery } from "../webhooks/deliver";
import { checkWebhookUrl } from "../webhooks/url";

const security = [{ apiKey: [] }];

const SecretStateFields = {
	secret_prefix: z.string().openapi({
		example: "whsec_MfKQ",
		description: "The current secret's first characters, to tell which one a receiver holds. Never the secret.",
	}),
	previous_secret_expires_at: z.string().nullable().openapi({
		description: "After a rotation, webhooks are also signed with the previous secret until this instant.",
	}),
	created_at: z.string(),
	rotated_at: z.string().nullable(),
};

/** What any key may read about the secret: enough to tell which one is current, nothing to verify or forge with. */
export const WebhookSecretInfoSchema = z.object(SecretStateFields).openapi("WebhookSecretInfo");

/** The answer of a rotation: the only place the secret itself is ever shown. */
export const WebhookSecretSchema = z
	.object({
		secret: z.string().openapi({
			example: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
			description:
				"Verify `webhook-signature` with this (Standard Webhooks, `v1` HMAC-SHA256). Shown once: store it now.",
		}),
		...SecretStateFields,
	})
	.openapi("WebhookSecret");

const WebhookTestBodySchema = z
	.object({
		url: z
			.url({ protocol: /^https?$/ })
			.max(2048)
			.openapi({ example: "https://example.com/hooks/reelgate" }),
	})
	.strict()
	.openapi("WebhookTestRequest");

const WebhookTestResultSchema = z
	.object({
		id: z.string().openapi({ description: "The `webhook-id` that was sent." }),
		type: z.literal("webhook.test"),
		url: z.string(),
		delivered: z.boolean(),
		status_code: z.number().int().optional(),
		error: z.string().optional(),
		duration_ms: z.number().int(),
	})
	.openapi("WebhookTestResult");

const getSecretRoute = createRoute({
	method: "get",
	path: "/v1/webhooks/secret",
	tags: ["Webhooks"],
	summary: "Which webhook signing secret is current (never the secret itself)",
	description:
		"The secret is a credential: it is shown once, by `POST /v1/webhooks/secret/rotate` (scope `account:admin`). " +
		"This reports its prefix and rotation times. Webhooks carry `webhook-id`, `webhook-timestamp` and `webhook-signature`.",
	security,
	middleware: [requireKey("jobs:read")] as const,
	responses: {
		200: { description: "The secret's state", content: { "application/json": { schema: WebhookSecretInfoSchema } } },
		...problemResponses(401, 403),
	},
});

const rotateSecretRoute = createRoute({
	method: "post",
	path: "/v1/webhooks/secret/rotate",
	tags: ["Webhooks"],
	summary: "Make a new webhook signing secret and show it, once (scope `account:admin`)",
	description:
		"Returns the new secret: the only answer that ever contains it. For 24 h both are valid: each webhook carries " +
		"two signatures (`v1,<new> v1,<old>`), so receivers can switch without missing one. Needs a key with the " +
		"`account:admin` scope (keys get it only when created with it).",
	security,
	middleware: [requireKey("account:admin")] as const,
	responses: {
		200: { description: "The new secret", content: { "application/json": { schema: WebhookSecretSchema } } },
		...problemResponses(401, 403),
	},
});

const testRoute = createRoute({
	method: "post",
	path: "/v1/webhooks/test",
	tags: ["Webhooks"],
	summary: "Send a signed `webhook.test` event now",
	description: "One attempt (no retries), 15 s timeout; the answer reports how it went.",
	security,
	middleware: [requireKey("jobs:write")] as const,
	request: { body: { required: true, content: { "application/json": { schema: WebhookTestBodySchema } } } },
	responses: {
		200: { description: "The attempt", content: { "application/json": { schema: WebhookTestResultSchema } } },
		...problemResponses(400, 401, 403, 422),
	},
});

/** Characters of a `whsec_` secret that may be shown: the prefix and 4 of its 32 random bytes' encoding. */
const SHOWN_PREFIX = "whsec_".length + 4;

function secretState(s: AccountSecrets): z.infer<typeof WebhookSecretInfoSchema> {
	const previousValid = s.webhookPreviousUntil !== null && Date.parse(s.webhookPreviousUntil) > Date.now();
	return {
		secret_prefix: s.webhook.slice(0, SHOWN_PREFIX),
		previous_secret_expires_at: previousValid ? s.webhookPreviousUntil : null,
		created_at: s.createdAt,
		rotated_at: s.webhookRotatedAt,
	};
}

export const webhooksRoutes = newRouter()
	.openapi(getSecretRoute, async (c) => {
		return c.json(secretState(await getAccountSecrets(c.env, c.get("caller").accountId)), 200);
	})
	.openapi(rotateSecretRoute, async (c) => {
		const rotated = await rotateWebhookSecret(c.env, c.get("caller").accountId);
		c.get("log").info("webhook_secret_rotated");
		return c.json({ secret: rotated.webhook, ...secretState(rotated) }, 200);
	})
	.openapi(testRoute, async (c) => {
		const { url } = c.req.valid("json");
		const checked = checkWebhookUrl(url, c.get("config").allowLoopbackWebhooks);
		if (!checked.ok) {
			throw new ApiError("unprocessable", `url: ${checked.message}`, {
				errors: [{ path: "json.url", message: checked.message }],
			});
		}
		const secrets = signingSecrets(await getAccountSecrets(c.env, c.get("caller").accountId));
		const id = newId("msg");
		const now = new Date();
		const body = JSON.stringify({
			type: "webhook.test",
			timestamp: now.toISOString(),
			data: { message: "A test event from Reelgate: your endpoint receives and verifies webhooks." },
		});
		const started = Date.now();
		const outcome = await attemptDelivery({ id, url, body }, secrets);
		const result: z.infer<typeof WebhookTestResultSchema> = {
			id,
			type: "webhook.test",
			url,
			delivered: outcome.kind === "delivered",
			duration_ms: Date.now() - started,
		};
		if ("statusCode" in outcome && outcome.statusCode !== undefined) result.status_code = outcome.statusCode;
		if (outcome.kind === "retry") result.error = outcome.error;
		if (outcome.kind === "gone") result.error = "the endpoint answered 410 Gone";
		c.get("log").info("webhook_test_sent", { host: checked.url.host, outcome: outcome.kind });
		return c.json(result, 200);
	});
