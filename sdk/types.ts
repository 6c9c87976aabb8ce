// Public types of the Reelgate API, inferred from the Worker's own zod schemas so the SDK cannot drift from
// the server. `import type` only: nothing of the Worker is bundled or run by the SDK.
import type { z } from "zod";
import type { ProblemSchema } from "../src/errors";
import type { ModelSchema } from "../src/models/view";
import type { CreateJobBodySchema, JobListSchema, JobSchema } from "../src/schemas/jobs";
import type { CreatedKeySchema, CreateKeyBodySchema } from "../src/schemas/keys";
import type { CreatedUploadSchema, CreateUploadBodySchema, UploadSchema } from "../src/schemas/uploads";

/** A job as the API returns it; a succeeded one may carry `share_url`, a link that plays without an API key. */
export type Job = z.infer<typeof JobSchema>;
export type JobStatus = Job["status"];
export type JobList = z.infer<typeof JobListSchema>;
export type CreateJobBody = z.input<typeof CreateJobBodySchema>;
export type Model = CreateJobBody["model"];

/**
 * A model of the catalog (`GET /v1/models`): its input files, its parameters as JSON Schema, its limits, and
 * whether a backend serves it now (`available`, else `unavailable_reason`).
 */
export type CatalogModel = z.infer<typeof ModelSchema>;

export type Upload = z.infer<typeof UploadSchema>;
export type CreateUploadBody = z.input<typeof CreateUploadBodySchema>;

/**
 * What `POST /v1/uploads` answers: a single PUT target (`upload.url`), or for large files `multipart.parts`
 * (one URL per part; part n holds bytes [(n-1)·part_size, n·part_size)), or an already stored upload with the
 * same SHA-256 (`status: "ready"`, `deduplicated: true`) that needs no bytes at all.
 */
export type CreatedUpload = z.infer<typeof CreatedUploadSchema>;
export type MultipartPart = NonNullable<CreatedUpload["multipart"]>["parts"][number];

export type CreateKeyBody = z.input<typeof CreateKeyBodySchema>;
export type CreatedKey = z.infer<typeof CreatedKeySchema>;

/** An RFC 9457 problem (`application/problem+json`), as every error response carries. */
export type Problem = z.infer<typeof ProblemSchema>;

export const TERMINAL_STATUSES: readonly JobStatus[] = ["succeeded", "failed", "canceled"];

/** One update while a job is watched: from the event stream, or synthesised by polling. */
export interface JobEvent {
	/** `status` or `progress` (the event stream's event names). */
	type: string;
	job: Job;
	/** The stream's event id, when the update came from the stream. */
	id?: string;
	source: "stream" | "poll";
}
