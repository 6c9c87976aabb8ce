import { createRoute, z } from "@hono/zod-openapi";
import { newRouter } from "../app";
import { requireKey } from "../auth/middleware";
import { endOnRevocation } from "../auth/revocation-guard";
import { isKeyActive } from "../db/keys";
import { notFound, problemResponses } from "../errors";
import { JOB_EVENT_TYPES, JobIdParamSchema } from "../schemas/jobs";
import { withShareUrlInEvents } from "../share/event-stream";
import { shareUrlOf } from "../share/render";
import { loadOwnJob } from "./jobs";

/**
 * One Server-Sent Event of the stream. Open API 3.1 has the `schema` of `text/event-stream` describe each event
 * (as its `id`, `event` and `data` fields), not the stream's text.
 */
const JobEventSchema = z
	.object({
		id: z.string().regex(/^\d+$/).openapi({ description: "The job's event sequence number, for `Last-Event-ID`." }),
		event: z.enum(JOB_EVENT_TYPES),
		data: z
			.string()
			.openapi({ description: "The job, as the JSON of `GET /v1/jobs/{id}`.", example: '{"id":"job_…"}' }),
	})
	.openapi("JobEvent");

const eventsRoute = createRoute({
	method: "get",
	path: "/v1/jobs/{id}/events",
	tags: ["Jobs"],
	summary: "Follow a job (Server-Sent Events)",
	description:
		"`event: status` at once with the job as `data`, then `progress` and `status` events as they happen, each with " +
		"an `id:`, and `log` events when the GPU worker reports new log lines (the job with the new lines in its `log` " +
		"field, as `GET /v1/jobs/{id}/logs` shows them); comments every 15 s keep the connection open; the stream ends after a terminal status. Reconnect " +
		"with `Last-Event-ID` to get only the events after it: 204 when a finished job has nothing after it (an id at or " +
		"past its last event; an id the job never sent, of a job still running, gets its current state). A succeeded " +
		"job carries `share_url`, as `GET /v1/jobs/{id}` does. The " +
		"key is checked again while the stream is open: revoking it ends the stream within `EVENT_STREAM_REAUTH_MS`.",
	security: [{ apiKey: [] }],
	middleware: [requireKey("jobs:read")] as const,
	request: {
		params: JobIdParamSchema,
		headers: z.object({ "last-event-id": z.string().optional() }),
	},
	responses: {
		200: { description: "The event stream", content: { "text/event-stream": { schema: JobEventSchema } } },
		204: { description: "Resumed at or past a finished job's last event: nothing more will come" },
		...problemResponses(401, 403, 404),
	},
});

/** `Last-Event-ID` as our sequence number; anything else (absent, garbage) means "from the current state". */
function parseLastEventId(raw: string | undefined): number | null {
	if (raw === undefined || !/^\d{1,15}$/.test(raw.trim())) return null;
	return Number(raw.trim());
}

export const jobEventsRoutes = newRouter().openapi(eventsRoute, async (c) => {
	const job = await loadOwnJob(c, c.req.valid("param").id);
	// The job's Durable Object serves every listener from one in-memory hub: the stream comes back over RPC.
	const stream = await c.env.JOBS.getByName(job.spec.id).events(parseLastEventId(c.req.header("last-event-id")));
	if (stream === null) {
		// A resume of a finished job with nothing after Last-Event-ID (or the job vanished: 404).
		if (!(await c.env.JOBS.getByName(job.spec.id).get())) throw notFound("Job");
		return c.body(null, 204);
	}
	const keyId = c.get("caller").keyId;
	const origin = new URL(c.req.url).origin;
	const shared = withShareUrlInEvents(stream, () => shareUrlOf(c.env, job.spec.account_id, job.spec.id, origin));
	const guarded = endOnRevocation(shared, () => isKeyActive(c.env.DB, keyId), c.get("config").eventStreamReauthMs);
	return new Response(guarded, {
		status: 200,
		headers: {
			"content-type": "text/event-stream",
			"cache-control": "no-store",
			"x-accel-buffering": "no",
		},
	});
});
