import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { newRouter } from "../app";
import { requireKey, requireKeyAlongside } from "../auth/middleware";
import { beginIdempotent, finishIdempotent, releaseIdempotent } from "../db/idempotency";
import { getJobAccount, type JobCursor, listJobs } from "../db/jobs";
import type { AppEnv } from "../env";
import { ApiError, notFound, problemResponses } from "../errors";
import { createJob, newJobIdentity, prepareJob, settledInOrder } from "../intake/create-job";
import { resumeAbandonedCreate } from "../intake/resume-create";
import { tagSaysOwnedBy } from "../jobs/job-id";
import { type JobRecord, type JobSnapshot, snapshotOf } from "../jobs/record";
import { toJobView } from "../jobs/view";
import { canonicalJson } from "../lib/canonical-json";
import { base64url, sha256Hex } from "../lib/ids";
import { checkSpendCap, reserveSlot } from "../limits/job-admission";
import { CreateJobBodySchema, JobIdParamSchema, JobListSchema, JobSchema, ListJobsQuerySchema } from "../schemas/jobs";
import { withShareUrls } from "../share/render";
import { jobVideoKey } from "../storage";
import { serveObject } from "../storage/serve-object";

const JOB_ID = /^job_[a-z0-9]{1,64}$/;
const security = [{ apiKey: [] }];
const json = (schema: typeof JobSchema) => ({ "application/json": { schema } });

const createJobRoute = createRoute({
	method: "post",
	path: "/v1/jobs",
	tags: ["Jobs"],
	summary: "Start a video job",
	description:
		"With `Idempotency-Key` (≤ 255 characters, kept 24 h): the same key and body return the same job (200); " +
		"another body gets 422 `idempotency_mismatch`; a retry while the first request runs gets 409. " +
		"Charged to the key's `requests` and `jobs` rate limits. A new job is refused with 429 while the account " +
		"has its maximum of jobs queued or running, and with 402 `spend_cap_reached` once its recorded cost this " +
		"UTC month has reached its monthly cap (`GET /v1/limits`).",
	security,
	middleware: [requireKey("jobs:write", { buckets: ["requests", "jobs"] })] as const,
	request: {
		headers: z.object({ "idempotency-key": z.string().optional() }),
		body: { required: true, content: { "application/json": { schema: CreateJobBodySchema } } },
	},
	responses: {
		200: { description: "The job this Idempotency-Key already created", content: json(JobSchema) },
		202: { description: "Accepted", content: json(JobSchema) },
		...problemResponses(400, 401, 402, 403, 409, 422, 503),
	},
});

const getJobRoute = createRoute({
	method: "get",
	path: "/v1/jobs/{id}",
	tags: ["Jobs"],
	summary: "Get a job",
	security,
	middleware: [requireKeyAlongside("jobs:read")] as const,
	request: { params: JobIdParamSchema },
	responses: { 200: { description: "The job", content: json(JobSchema) }, ...problemResponses(401, 403, 404) },
});

const listJobsRoute = createRoute({
	method: "get",
	path: "/v1/jobs",
	tags: ["Jobs"],
	summary: "List jobs, newest first",
	security,
	middleware: [requireKey("jobs:read")] as const,
	request: { query: ListJobsQuerySchema },
	responses: {
		200: { description: "A page of jobs", content: { "application/json": { schema: JobListSchema } } },
		...problemResponses(400, 401, 403),
	},
});

const cancelJobRoute = createRoute({
	method: "post",
	path: "/v1/jobs/{id}/cancel",
	tags: ["Jobs"],
	summary: "Cancel a job",
	security,
	middleware: [requireKey("jobs:write")] as const,
	request: { params: JobIdParamSchema },
	responses: {
		200: { description: "The canceled job", content: json(JobSchema) },
		...problemResponses(401, 403, 404, 409),
	},
});

const videoRoute = createRoute({
	method: "get",
	path: "/v1/jobs/{id}/video",
	tags: ["Jobs"],
	summary: "Download the video (Range, ETag)",
	security,
	middleware: [requireKey("jobs:read")] as const,
	request: { params: JobIdParamSchema },
	responses: {
		200: { description: "The video", content: { "video/mp4": { schema: z.string().openapi({ format: "binary" }) } } },
		206: { description: "Part of the video" },
		304: { description: "Not modified" },
		...problemResponses(401, 403, 404, 409, 416),
	},
});

/** The Idempotency-Key header, as a bare token or an RFC 8941 sf-string (`"…"`). */
function parseIdempotencyKey(raw: string | undefined): string | undefined {
	if (raw === undefined) return undefined;
	const key = /^".*"$/.test(raw) ? raw.slice(1, -1) : raw;
	if (key.length === 0 || key.length > 255) {
		throw new ApiError("invalid_request", "Idempotency-Key must be 1 to 255 characters.", {
			errors: [{ path: "header.idempotency-key", message: "1 to 255 characters" }],
		});
	}
	return key;
}

/** One read of a job's Durable Object, and the account its answer belongs to. */
interface JobRead<T> {
	read(job: ReturnType<Env["JOBS"]["getByName"]>): Promise<T | null>;
	accountOf(answer: T): string;
}

const RECORD: JobRead<JobRecord> = { read: (job) => job.get(), accountOf: (record) => record.spec.account_id };
/** The status read's: only what the view shows (JobDO.snapshot). */
const SNAPSHOT: JobRead<JobSnapshot> = { read: (job) => job.snapshot(), accountOf: (snapshot) => snapshot.account_id };

/** Loads a job of the caller's account; another account's job reads as missing. */
export function loadOwnJob(c: Context<AppEnv>, id: string): Promise<JobRecord> {
	return readOwnJob(c, id, RECORD);
}

async function readOwnJob<T>(c: Context<AppEnv>, id: string, how: JobRead<T>): Promise<T> {
	if (!JOB_ID.test(id)) throw notFound("Job");
	const accountId = c.get("caller").accountId;
	// An id tagged for this account needs no lookup; any other goes through the index, which answers "whose is
	// it" without waking (or creating) a Durable Object for a foreign or bogus id.
	const tagged = await tagSaysOwnedBy(c.env.SIGNING_SECRET, id, accountId);
	if (!tagged && (await getJobAccount(c.env.DB, id)) !== accountId) throw notFound("Job");
	return owned(await how.read(c.env.JOBS.getByName(id)), how, accountId);
}

function owned<T>(answer: T | null, how: JobRead<T>, accountId: string): T {
	if (answer === null || how.accountOf(answer) !== accountId) throw notFound("Job");
	return answer;
}

/**
 * The status read's critical path: when this key's account is known from an earlier request and the id is tagged
 * for it, the job's Durable Object is read while the key's gate admits the request, so the two round trips
 * overlap. Nothing is answered before the gate has; a gate that names another account discards the early read.
 */
async function loadOwnSnapshotAlongside(c: Context<AppEnv>, id: string): Promise<JobSnapshot> {
	const hint = c.get("callerHint");
	const early =
		hint && JOB_ID.test(id) && (await tagSaysOwnedBy(c.env.SIGNING_SECRET, id, hint.accountId))
			? SNAPSHOT.read(c.env.JOBS.getByName(id))
			: null;
	early?.catch(() => undefined);
	await c.get("admitted");
	if (early && hint && c.get("caller").accountId === hint.accountId)
		return owned(await early, SNAPSHOT, hint.accountId);
	return readOwnJob(c, id, SNAPSHOT);
}

function encodeCursor(cursor: JobCursor): string {
	return base64url(new TextEncoder().encode(JSON.stringify([cursor.created_at, cursor.id])));
}

function decodeCursor(raw: string): JobCursor {
	try {
		const b64 = raw.replaceAll("-", "+").replaceAll("_", "/");
		const parsed: unknown = JSON.parse(atob(b64));
		if (Array.isArray(parsed) && typeof parsed[0] === "string" && typeof parsed[1] === "string") {
			return { created_at: parsed[0], id: parsed[1] };
		}
	} catch {
		// Falls through to the problem below.
	}
	throw new ApiError("invalid_request", "The cursor is not valid: pass `next_cursor` from a previous page.", {
		errors: [{ path: "query.cursor", message: "invalid cursor" }],
	});
}

const originOf = (c: Context<AppEnv>) => new URL(c.req.url).origin;

export const jobsRoutes = newRouter()
	.openapi(createJobRoute, async (c) => {
		const body = c.req.valid("json");
		const accountId = c.get("caller").accountId;
		const key = parseIdempotencyKey(c.req.header("idempotency-key"));
		// Chosen first: the idempotency claim records the id, so a retry can finish a creation that died midway.
		let identity = await newJobIdentity(c.env, accountId);
		if (key !== undefined) {
			const hash = await sha256Hex(canonicalJson(body));
			const claim = await beginIdempotent(c.env.DB, accountId, key, hash, new Date(), identity.id);
			switch (claim.state) {
				case "replay": {
					const job = await c.env.JOBS.getByName(claim.jobId).get();
					if (!job) throw notFound("Job");
					return c.json(toJobView(snapshotOf(job), originOf(c)), 200);
				}
				case "mismatch":
					throw new ApiError("idempotency_mismatch", "This Idempotency-Key was used with another request body.");
				case "in_flight":
					throw new ApiError("idempotency_in_flight", "A request with this Idempotency-Key is still in progress.", {
						headers: { "retry-after": "1" },
					});
				case "resume": {
					const job = await resumeAbandonedCreate(c.env, accountId, key, claim.jobId);
					if (job) return c.json(toJobView(snapshotOf(job), originOf(c)), 200);
					identity = { ...identity, id: claim.jobId };
					break;
				}
				case "new":
					break;
			}
		}
		// Replays returned above: only a new job meets the spend cap and takes a concurrent-job slot.
		let slot: { release: () => Promise<void> } | undefined;
		let job: JobRecord;
		try {
			// The spend cap, the concurrency reservation and the validation read side by side (one round trip);
			// their refusals keep their order (402, then 429, then the body's 400s), and a slot taken for a request
			// refused after all is released below.
			const reservation = { id: identity.id, accountId, model: body.model, createdAt: identity.created_at };
			const reserving = reserveSlot(c.env.DB, reservation, c.get("limits"), Date.now()).then((s) => {
				slot = s;
				return s;
			});
			const limited = settledInOrder([
				checkSpendCap(c.env.DB, accountId, c.get("limits"), new Date()),
				reserving,
			] as const);
			// An input given as a URL is fetched only for a request the limits admit: no fetching on a refused one.
			if ([body.input.image, body.input.audio].some((ref) => ref !== undefined && /^https?:\/\//i.test(ref))) {
				await limited;
			}
			const [, spec] = await settledInOrder([
				limited,
				prepareJob(c.env, accountId, body, originOf(c), identity),
			] as const);
			job = await createJob(c.env, spec);
		} catch (err) {
			// A reservation left behind stops counting on its own after a minute (src/db/job-slots.ts).
			await slot?.release().catch((e: unknown) => c.get("log").error("slot_release_failed", { error: String(e) }));
			if (key !== undefined) await releaseIdempotent(c.env.DB, accountId, key);
			throw err;
		}
		if (key !== undefined) await finishIdempotent(c.env.DB, accountId, key, job.spec.id);
		c.get("log").info("job_created", { job_id: job.spec.id, model: job.spec.model, backend: job.spec.backend.name });
		return c.json(toJobView(snapshotOf(job), originOf(c)), 202, { location: `/v1/jobs/${job.spec.id}` });
	})
	.openapi(listJobsRoute, async (c) => {
		const query = c.req.valid("query");
		const page = await listJobs(c.env.DB, c.get("caller").accountId, {
			status: query.status,
			limit: query.limit,
			after: query.cursor ? decodeCursor(query.cursor) : undefined,
		});
		const origin = originOf(c);
		const views = page.jobs.map((j) => toJobView(j, origin));
		const data = await withShareUrls(c.env, c.get("caller").accountId, views, origin);
		return c.json({ data, next_cursor: page.next ? encodeCursor(page.next) : null }, 200);
	})
	.openapi(getJobRoute, async (c) => {
		const snapshot = await loadOwnSnapshotAlongside(c, c.req.valid("param").id);
		const origin = originOf(c);
		const view = toJobView(snapshot, origin);
		// Only a succeeded job gets a share URL (and only it reads the account's share secret).
		if (view.status !== "succeeded") return c.json(view, 200);
		const [withShare] = await withShareUrls(c.env, snapshot.account_id, [view], origin);
		return c.json(withShare ?? view, 200);
	})
	.openapi(cancelJobRoute, async (c) => {
		const job = await loadOwnJob(c, c.req.valid("param").id);
		const result = await c.env.JOBS.getByName(job.spec.id).cancel();
		if (!result.ok) {
			switch (result.reason) {
				case "not_found":
					throw notFound("Job");
				case "terminal":
					throw new ApiError("conflict", `The job is already ${result.status}; it cannot be canceled.`);
				case "not_submitted":
					// Cancel is accepted in every non-terminal state; this refusal belongs to other events.
					throw new ApiError("conflict", "The job cannot be canceled now.");
			}
		}
		return c.json(toJobView(snapshotOf(result.job), originOf(c)), 200);
	})
	.openapi(videoRoute, async (c) => {
		const job = await loadOwnJob(c, c.req.valid("param").id);
		if (job.status !== "succeeded") {
			throw new ApiError("not_ready", `The job is ${job.status}; the video exists once it has succeeded.`);
		}
		const res = await serveObject(c.env.BUCKET, jobVideoKey(job), c.req.raw, {
			contentType: "video/mp4",
			filename: `${job.spec.id}.mp4`,
		});
		if (!res) throw notFound("Video");
		return res;
	});
