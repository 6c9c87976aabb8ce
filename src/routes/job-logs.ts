import { createRoute, z } from "@hono/zod-openapi";
import { newRouter } from "../app";
import { requireKey } from "../auth/middleware";
import { notFound, problemResponses } from "../errors";
import { JobIdParamSchema } from "../schemas/jobs";
import { loadOwnJob } from "./jobs";

const LogValue = z.union([z.string(), z.number(), z.boolean(), z.null()]);

const JobLogSchema = z
	.object({
		data: z.array(
			z.object({
				at: z.string(),
				source: z.enum(["service", "worker"]).openapi({
					description:
						"`service`: a step of the job (submitted, retry, waiting, …); `worker`: a line of the GPU worker.",
				}),
				event: z.string(),
				status: z.string().optional().openapi({ description: "The job's status after a service step." }),
				message: z.string().optional(),
				fields: z.record(z.string(), LogValue).optional(),
			}),
		),
	})
	.openapi("JobLog");

const logsRoute = createRoute({
	method: "get",
	path: "/v1/jobs/{id}/logs",
	tags: ["Jobs"],
	summary: "A job's log: its steps and the GPU worker's lines",
	description:
		"Oldest first: each step the service took with the job (submissions, retries, waits, failover, its end) and the " +
		"lines the GPU worker wrote about it, carried back with its status answers (the `pod` and `runpod` kinds). " +
		"URLs lose their query string and secrets are replaced; a line is at most 1000 characters, and the newest 500 " +
		"worker lines are kept, as long as the job.",
	security: [{ apiKey: [] }],
	middleware: [requireKey("jobs:read")] as const,
	request: { params: JobIdParamSchema },
	responses: {
		200: { description: "The log", content: { "application/json": { schema: JobLogSchema } } },
		...problemResponses(401, 403, 404),
	},
});

export const jobLogsRoutes = newRouter().openapi(logsRoute, async (c) => {
	const job = await loadOwnJob(c, c.req.valid("param").id);
	const data = await c.env.JOBS.getByName(job.spec.id).logs();
	if (!data) throw notFound("Job");
	return c.json({ data }, 200);
});
