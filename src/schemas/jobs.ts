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

/**
 * The events of a job's event stream (`GET /v1/jobs/{id}/events`). `log` carries the job too, with the GPU worker's
 * new log lines in its `log` field.
 */
export const JOB_EVENT_TYPES = ["status", "progress", "log"] as const;
export type JobEventType = (typeof JOB_EVENT_TYPES)[number];

/** Where a webhook message stands: queued or retrying, delivered, given up, or switched off by a 410. */
export const DELIVERY_STATUSES = ["pending", "delivered", "failed", "disabled"] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/**
 * Why a job that is not running waits (its `queue.reason`), each read from recorded state, never guessed:
 * - `submitting`: due to be sent to its backend now (just created, moved to another backend, or resubmitted).
 * - `waiting_for_capacity`: every slot of its backend is held; it has a place in the backend's fair queue.
 * - `backend_unhealthy`: the backend's circuit breaker is open; `retry_at` is when a probe may go through.
 * - `cold_start`: the backend's machine is starting (a vast.ai instance booting); `retry_at` is the next check.
 * - `retrying`: the last call to the backend failed transiently; `retry_at` is the next try.
 * - `backend_queued`: the backend accepted the job and has not started it; whether it is behind other work or a
 *   worker is starting, the backend does not say.
 * - `unknown`: nothing recorded says (a job stored before reasons were recorded, until its next step).
 * An account's concurrency cap never makes a job wait: `POST /v1/jobs` refuses the job (429) instead.
 */
export const QUEUE_REASONS = [
	"submitting",
	"waiting_for_capacity",
	"backend_unhealthy",
	"cold_start",
	"retrying",
	"backend_queued",
	"unknown",
] as const;
export type QueueReason = (typeof QUEUE_REASONS)[number];

/** Where an ETA comes from (`eta.basis`). */
export const ETA_BASES = ["measured", "manifest", "default", "progress"] as const;

/** A job's priority within its own account's share of a backend (never across accounts). */
export const JOB_PRIORITIES = ["low", "normal", "high"] as const;
export type JobPriority = (typeof JOB_PRIORITIES)[number];

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
		priority: z
			.enum(JOB_PRIORITIES)
			.optional()
			.openapi({
				description:
					"Order among this account's own jobs waiting for the same backend (default `normal`). Accounts still " +
					"share a full backend fairly: a `high` job never goes before another account's waiting job.",
			}),
		start_by: z.iso
			.datetime({ offset: true })
			.optional()
			.openapi({
				description:
					"The job fails with `not_started_in_time` (and any run the backend has queued is canceled) if it is not " +
					"running by then. In the future, and before the job's deadline.",
			}),
		max_runtime_s: z
			.number()
			.int()
			.min(5)
			.max(604_800)
			.optional()
			.openapi({
				description:
					"Once running, the job's run is canceled past this many seconds and the job fails with " +
					"`max_runtime_exceeded`; RunPod backends get it as the job's `policy.executionTimeout`. At most the " +
					"job's deadline.",
			}),
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
			.object({
				gpu_seconds: z.number(),
				usd: z.number(),
				price_per_second_usd: z
					.number()
					.optional()
					.openapi({ description: "The price of the backend (or rented machine) of the job's last submission." }),
				backend: z.string().optional(),
				backend_kind: z.string().optional(),
				gpu_type: z
					.string()
					.optional()
					.openapi({ description: "The GPU of the last run, as the worker names it (ComfyUI's device name)." }),
				backend_delay_s: z
					.number()
					.optional()
					.openapi({
						description:
							"How long the backend held the runs before they started, as it reports it (RunPod's `delayTime`: " +
							"its queue and any worker's cold start), summed over the billed runs.",
					}),
				submissions: z
					.number()
					.int()
					.optional()
					.openapi({ description: "Submissions the backend accepted; each that ran is in the sums." }),
			})
			.optional()
			.openapi({
				description:
					"GPU time spent so far over all the job's submissions, abandoned runs included. Present once known: " +
					"when a run reports its execution time, and on every terminal job that was never submitted (zero).",
			}),
		eta: z
			.object({
				start_at: z.string(),
				finish_at: z.string(),
				basis: z.enum(ETA_BASES).openapi({
					description:
						"`measured`: fit from the model's completed runs at its backend (`samples` of them); `manifest`: the " +
						"model's throughput figure; `default`: no figure yet; `progress`: a running job's own progress.",
				}),
				samples: z.number().int().min(0),
			})
			.optional()
			.openapi({
				description:
					"When the job should start and finish, from measured run times, the jobs ahead of it and the backend's " +
					"queue delay; refined from progress while it runs. Absent once the job ended. See docs/api.md.",
			}),
		priority: z.enum(JOB_PRIORITIES).optional(),
		start_by: z.string().optional(),
		max_runtime_s: z.number().int().optional(),
		queue: z
			.object({
				reason: z.enum(QUEUE_REASONS),
				position: z
					.number()
					.int()
					.min(0)
					.openapi({
						description:
							"Its place in the backend's admission queue (1: next to get a slot), in the order admission really " +
							"grants slots (fair across accounts); 0 when it is not in that queue.",
					}),
				ahead: z.number().int().min(0).openapi({
					description: "Jobs that hold a slot of its backend or come before it in the queue; 0 when not queued there.",
				}),
				since: z.string().openapi({ description: "When the job started waiting for this reason." }),
				retry_at: z
					.string()
					.optional()
					.openapi({ description: "When the job is next tried (`backend_unhealthy`, `cold_start`, `retrying`)." }),
			})
			.optional()
			.openapi({
				description:
					"Where a job that is not running stands and why it waits; present while its status is `queued`. " +
					"See docs/api.md for the reasons.",
			}),
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
