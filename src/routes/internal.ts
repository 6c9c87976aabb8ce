import { createRoute, z } from "@hono/zod-openapi";
import { newRouter } from "../app";
import { verifyRunpodWebhookToken } from "../backends/webhook-token";
import { ApiError, problemResponses } from "../errors";

const ParamsSchema = z.object({
	job_id: z
		.string()
		.regex(/^job_[a-z0-9]{1,64}$/)
		.openapi({ param: { name: "job_id", in: "path" } }),
});
const QuerySchema = z.object({ token: z.string().min(1).max(128) });

const runpodWebhookRoute = createRoute({
	method: "post",
	path: "/v1/internal/runpod/{job_id}",
	tags: ["Internal"],
	summary: "RunPod completion webhook (called by RunPod, not by clients)",
	description:
		"RunPod's webhook calls are unsigned and retried at most twice, so the body is not trusted: a valid per-job " +
		"token makes the job poll RunPod's `/status` now. Answers 200 at once; a repeated call is harmless.",
	request: { params: ParamsSchema, query: QuerySchema },
	responses: {
		200: {
			description: "Received",
			content: { "application/json": { schema: z.object({ received: z.literal(true) }) } },
		},
		...problemResponses(400, 403),
	},
});

/** Routes that backends call back on; each authenticates itself (no API key). */
export const internalRoutes = newRouter().openapi(runpodWebhookRoute, async (c) => {
	const { job_id } = c.req.valid("param");
	const { token } = c.req.valid("query");
	// The body echoes the whole job input: never read or logged, just drained.
	await c.req.raw.body?.cancel();
	if (!(await verifyRunpodWebhookToken(c.env.SIGNING_SECRET, job_id, token))) {
		throw new ApiError("forbidden", "The webhook token is not valid for this job.");
	}
	await c.env.JOBS.getByName(job_id).poke();
	c.get("log").info("runpod_webhook", { job_id });
	return c.json({ received: true as const }, 200);
});
