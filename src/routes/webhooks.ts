import { createRoute, z } from "@hono/zod-openapi";
import { newRouter } from "../app";
import { requireKey } from "../auth/middleware";
import { type AccountSecrets, getAccountSecrets, rotateWebhookSecret, signingSecrets } from "../db/account-secrets";
import { ApiError, problemResponses } from "../errors";
import { newId } from "../lib/ids";
import { attemptDelivery } from "../webhooks/deliver";
import { checkWebhookUrl } from "../webhooks/url";

const security = [{ apiKey: [] }];

export const WebhookSecretSchema = z
	.object({
		secret: z.string().openapi({
			example: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
			description: "Verify `webhook-signature` with this (Standard Webhooks, `v1` HMAC-SHA256).",
		}),
		previous_secret_expires_at: z.string().nullable().openapi({
			description: "After a rotation, webhooks are also signed with the previous secret until this instant.",
		}),
		created_at: z.string(),
		rotated_at: z.string().nullable(),
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
	summary: "The account's webhook signing secret",
	description: "Created on first use. Webhooks carry `webhook-id`, `webhook-timestamp` and `webhook-signature`.",
	security,
	middleware: [requireKey("jobs:read")] as const,
	responses: {
		200: { description: "The secret", content: { "application/json": { schema: WebhookSecretSchema } } },
		...problemResponses(401, 403),
	},
});

const rotateSecretRoute = createRoute({
	method: "post",
	path: "/v1/webhooks/secret/rotate",
	tags: ["Webhooks"],
	summary: "Rotate the webhook signing secret",
	description:
		"Returns the new secret. For 24 h both are valid: each webhook carries two signatures " +
		"(`v1,<new> v1,<old>`), so receivers can switch without missing one.",
	security,
	middleware: [requireKey("jobs:write")] as const,
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

function secretView(s: AccountSecrets) {
	const previousValid = s.webhookPreviousUntil !== null && Date.parse(s.webhookPreviousUntil) > Date.now();
	return {
		secret: s.webhook,
		previous_secret_expires_at: previousValid ? s.webhookPreviousUntil : null,
		created_at: s.createdAt,
		rotated_at: s.webhookRotatedAt,
	};
}

export const webhooksRoutes = newRouter()
	.openapi(getSecretRoute, async (c) => {
		return c.json(secretView(await getAccountSecrets(c.env, c.var.caller.accountId)), 200);
	})
	.openapi(rotateSecretRoute, async (c) => {
		const rotated = await rotateWebhookSecret(c.env, c.var.caller.accountId);
		c.var.log.info("webhook_secret_rotated");
		return c.json(secretView(rotated), 200);
	})
	.openapi(testRoute, async (c) => {
		const { url } = c.req.valid("json");
		const checked = checkWebhookUrl(url, c.var.config.allowLoopbackWebhooks);
		if (!checked.ok) {
			throw new ApiError("unprocessable", `url: ${checked.message}`, {
				errors: [{ path: "json.url", message: checked.message }],
			});
		}
		const secrets = signingSecrets(await getAccountSecrets(c.env, c.var.caller.accountId));
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
		c.var.log.info("webhook_test_sent", { host: checked.url.host, outcome: outcome.kind });
		return c.json(result, 200);
	});
