import { z } from "@hono/zod-openapi";
import { MODELS } from "../backends/types";
import type { JobSnapshot } from "./record";
import { JOB_STATUSES } from "./state";

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
		model: z.enum(MODELS),
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
			})
			.strict(),
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
	.superRefine((body, ctx) => {
		if (body.model === "wan2.2-s2v" && !body.input.audio) {
			ctx.addIssue({ code: "custom", path: ["input", "audio"], message: "is required by wan2.2-s2v" });
		}
	})
	.openapi("CreateJobRequest");
export type CreateJobBody = z.infer<typeof CreateJobBodySchema>;

const JobStatusSchema = z.enum(JOB_STATUSES);

export const JobSchema = z
	.object({
		id: z.string().openapi({ example: "job_0a1b2c3d4e5f6g7h8i9j" }),
		status: JobStatusSchema,
		model: z.string(),
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
							status: z.enum(["pending", "delivered", "failed", "disabled"]),
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

/** The public JSON of a job; links are absolute, from the origin the client used. */
export function toJobView(job: JobSnapshot, origin: string): JobView {
	const self = `${origin}/v1/jobs/${job.id}`;
	const links = { self, events: `${self}/events`, video: `${self}/video` };
	const view: JobView = {
		id: job.id,
		status: job.status,
		model: job.model,
		created_at: job.created_at,
		progress: job.progress,
		backend: job.backend,
		attempts: job.attempts,
		links,
	};
	if (job.started_at) view.started_at = job.started_at;
	if (job.completed_at) view.completed_at = job.completed_at;
	if (job.error) view.error = job.error;
	if (job.output) view.output = { video: { url: links.video, ...job.output.video } };
	if (job.cost) view.cost = job.cost;
	if (job.webhook) view.webhook = job.webhook;
	return view;
}
