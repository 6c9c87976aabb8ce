/**
 * The public wire shapes of jobs: what `POST /v1/jobs` takes, what a job looks like, the list and its query, and
 * the enums a client may see. Routes validate with these, `/openapi.json` is generated from them, and the SDK
 * infers its types from them (sdk/types.ts); nothing here depends on how jobs are run.
 */
import { z } from "@hono/zod-openapi";

/** A job's statuses: queued → running → succeeded | failed | canceled (the last three are terminal). */
export const JOB_STATUSES = ["queued", "running", "succeeded", "failed", "canceled"] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** A model id: the catalog (`GET /v1/models`) says which exist; models are data, registered at run time. */
export type Model = string;

/** The events of a job's event stream (`GET /v1/jobs/{id}/events`). */
export const JOB_EVENT_TYPES = ["status", "progress"] as const;
export type JobEventType = (typeof JOB_EVENT_TYPES)[number];

/** Where a webhook message stands: queued or retrying, delivered, given up, or switched off by a 410. */
export const DELIVERY_STATUSES = ["pending", "delivered", "failed", "disabled"] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

export const MIN_SIDE = 64;
export const MAX_SIDE = 1920;
const UPLOAD_ID = /^upl_[a-z0-9]{1,64}$/;

const InputRefSchema = z
	.string()
	.min(1)
	.max(2048)
	// http:// passes the schema so the URL guard can explain its refusal (it allows http only to loopback in dev).
	.refine((s) => UPLOAD_ID.test(s) || /^https?:\/\//i.test(s), "must be an upload id (`upl_…`) or an https URL")
	.openapi({ example: "upl_3j9x0c2v5b8n1m4k7l0p2q5r8s" });

const ResolutionSchema = z
	.string()
	.regex(/^\d+x\d+$/, "must be WIDTHxHEIGHT, e.g. 640x640")
	.refine((s) => {
		const [w, h] = s.split("x").map(Number);
		return [w, h].every((n) => n !== undefined && n % 16 === 0 && n >= MIN_SIDE && n <= MAX_SIDE);
	}, `each side must be a multiple of 16 between ${MIN_SIDE} and ${MAX_SIDE}`);

export const WEBHOOK_EVENTS = ["running", "progress", "succeeded", "failed", "canceled"] as const;

export const CreateJobBodySchema = z
	.object({
		model: z.string().min(1).max(64).openapi({
			example: "preview",
			description: "A model of `GET /v1/models`; an id it does not list is refused, naming the ones it does.",
		}),
		input: z
			.object({
				image: InputRefSchema,
				audio: InputRefSchema.optional(),
				prompt: z.string().max(2000).optional(),
				negative_prompt: z.string().max(2000).optional(),
				resolution: ResolutionSchema.optional(),
				duration_s: z.number().min(0.5).max(60).optional(),
				fps: z.number().int().min(1).max(60).optional(),
				seed: z
					.number()
					.int()
					.min(0)
					.max(2 ** 53 - 1)
					.optional(),
				steps: z.number().int().min(1).max(100).optional(),
				loras: z
					.array(
						z
							.object({
								url: z.string().min(1).max(2048).openapi({ description: "https, on a public host." }),
								strength: z.number().optional().openapi({ description: "Default: the model's (`limits.loras`)." }),
								sha256: z
									.string()
									.regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits")
									.optional()
									.openapi({ description: "Checked against the downloaded file; the cache key." }),
							})
							.strict(),
					)
					.max(8)
					.optional()
					.openapi({
						description:
							"LoRAs applied to the model's diffusion model, in order, for a model that takes them (`limits.loras` " +
							"in `GET /v1/models/{id}`: how many, how large, the strength range).",
					}),
			})
			// The model's own parameters beyond these: checked against its parameter schema when the job is created.
			.catchall(z.unknown())
			.openapi({
				description:
					"The model's input files and parameters. The fields here are bounds every model shares; each model's " +
					"own (which it takes, their ranges, defaults, other parameters) are in `GET /v1/models/{id}`.",
			}),
		webhook: z
			.object({
				// https only; http to loopback only with ALLOW_LOOPBACK_WEBHOOKS (checked in createJob, it needs env).
				url: z.url({ protocol: /^https?$/ }).max(2048),
				events: z.array(z.enum(WEBHOOK_EVENTS)).min(1).optional(),
			})
			.strict()
			.optional(),
		backend: z
			.string()
			.regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/)
			.optional(),
	})
	.strict()
	.openapi("CreateJobRequest");
export type CreateJobBody = z.infer<typeof CreateJobBodySchema>;

const JobStatusSchema = z.enum(JOB_STATUSES);

export const JobSchema = z
	.object({
		id: z.string().openapi({ example: "job_0a1b2c3d4e5f6g7h8i9j" }),
		status: JobStatusSchema,
		model: z.string(),
		model_version: z
			.string()
			.optional()
			.openapi({ description: "The version of the model's manifest the job runs (`GET /v1/admin/models/{id}`)." }),
		loras: z
			.array(z.object({ url: z.string(), strength: z.number(), sha256: z.string().optional() }))
			.optional()
			.openapi({
				description:
					"The LoRAs the job runs with, in order (`input.loras`); each URL without its query string, which may sign it.",
			}),
		created_at: z.string(),
		started_at: z.string().optional(),
		completed_at: z.string().optional(),
		progress: z.object({
			percent: z.number().min(0).max(100),
			stage: z.string().optional(),
			message: z.string().optional(),
		}),
		backend: z.object({ name: z.string(), kind: z.string() }).optional(),
		attempts: z.number().int(),
		error: z.object({ code: z.string(), message: z.string() }).optional(),
		output: z
			.object({
				video: z.object({
					url: z.string(),
					content_type: z.string(),
					size: z.number().int(),
					sha256: z.string().optional(),
					duration_s: z.number().optional(),
					width: z.number().int().optional(),
					height: z.number().int().optional(),
					fps: z.number().optional(),
				}),
			})
			.optional(),
		cost: z
			.object({ gpu_seconds: z.number(), usd: z.number() })
			.optional()
			.openapi({ description: "GPU time spent so far over all the job's submissions, abandoned runs included." }),
		webhook: z
			.object({
				url: z.string(),
				events: z.array(z.string()),
				deliveries: z
					.array(
						z.object({
							id: z.string().openapi({ description: "The `webhook-id` header: the same on every retry." }),
							type: z.string().openapi({ example: "job.succeeded" }),
							attempts: z.number().int(),
							status: z.enum(DELIVERY_STATUSES),
							last_status_code: z.number().int().optional(),
							last_error: z.string().optional(),
							next_attempt_at: z.string().optional(),
						}),
					)
					.optional()
					.openapi({ description: "The newest deliveries; absent inside event and webhook payloads." }),
			})
			.optional(),
		share_url: z
			.string()
			.optional()
			.openapi({ description: "A signed link that plays the video without an API key (succeeded jobs; 24 h)." }),
		links: z.object({ self: z.string(), events: z.string(), video: z.string() }),
	})
	.openapi("Job");
export type JobView = z.infer<typeof JobSchema>;

export const JobListSchema = z
	.object({ data: z.array(JobSchema), next_cursor: z.string().nullable() })
	.openapi("JobList");

export const ListJobsQuerySchema = z.object({
	status: JobStatusSchema.optional(),
	limit: z.coerce.number().int().min(1).max(100).default(20),
	cursor: z.string().max(512).optional(),
});

export const JobIdParamSchema = z.object({
	id: z
		.string()
		.max(64)
		.openapi({ param: { name: "id", in: "path" }, example: "job_0a1b2c3d4e5f6g7h8i9j" }),
});
