import { createRoute, z } from "@hono/zod-openapi";
import { newRouter } from "../app";
import { requireKey } from "../auth/middleware";
import { getAccountSecrets, rotateShareSecret } from "../db/account-secrets";
import { getJobAccount } from "../db/jobs";
import { ApiError, problemResponses } from "../errors";
import { JobIdParamSchema } from "../schemas/jobs";
import {
	DEFAULT_SHARE_TTL_S,
	MAX_SHARE_TTL_S,
	MIN_SHARE_TTL_S,
	shareExpiry,
	signShareUrl,
	verifyShare,
} from "../share/links";
import { jobVideoKey } from "../storage";
import { serveObject } from "../storage/serve-object";
import { loadOwnJob } from "./jobs";

const security = [{ apiKey: [] }];
const JOB_ID = /^job_[a-z0-9]{1,64}$/;

const CreateShareBodySchema = z
	.object({
		expires_in_s: z
			.number()
			.int()
			.min(MIN_SHARE_TTL_S)
			.max(MAX_SHARE_TTL_S)
			.optional()
			.openapi({ description: `Lifetime in seconds (default ${DEFAULT_SHARE_TTL_S}).` }),
	})
	.strict()
	.openapi("CreateShareRequest");

const ShareLinkSchema = z
	.object({
		url: z.string().openapi({ description: "Plays without an API key until `expires_at`; treat it as a secret." }),
		expires_at: z.string(),
	})
	.openapi("ShareLink");

const createShareRoute = createRoute({
	method: "post",
	path: "/v1/jobs/{id}/share",
	tags: ["Jobs"],
	summary: "A signed link to the finished video",
	description:
		'Body (optional, JSON, at most 1 MiB; none or `{}` gives 24 h): `{ "expires_in_s": 60..604800 }`. The link plays without an API ' +
		"key until it expires or `POST /v1/share/secret/rotate` revokes it.",
	security,
	middleware: [requireKey("jobs:read")] as const,
	// The body is parsed in the handler: an empty body sent with `content-type: application/json` is fine here.
	request: { params: JobIdParamSchema },
	responses: {
		200: { description: "The link", content: { "application/json": { schema: ShareLinkSchema } } },
		...problemResponses(400, 401, 403, 404, 409, 413, 415),
	},
});

const rotateShareRoute = createRoute({
	method: "post",
	path: "/v1/share/secret/rotate",
	tags: ["Jobs"],
	summary: "Revoke every share link of the account",
	description: "Replaces the key share links are signed with: all outstanding links stop working at once.",
	security,
	middleware: [requireKey("jobs:write")] as const,
	responses: {
		200: {
			description: "Rotated",
			content: { "application/json": { schema: z.object({ rotated_at: z.string() }).openapi("ShareRotation") } },
		},
		...problemResponses(401, 403),
	},
});

const serveShareRoute = createRoute({
	method: "get",
	path: "/v1/share/{job_id}/video.mp4",
	tags: ["Jobs"],
	summary: "Play a shared video (no API key; Range, ETag)",
	request: {
		params: z.object({
			job_id: z
				.string()
				.max(80)
				.openapi({ param: { name: "job_id", in: "path" } }),
		}),
		// Optional here so a missing part reads as an invalid link (403), like a wrong one.
		query: z.object({ exp: z.string().optional(), sig: z.string().optional() }),
	},
	responses: {
		200: { description: "The video", content: { "video/mp4": { schema: z.string().openapi({ format: "binary" }) } } },
		206: { description: "Part of the video" },
		304: { description: "Not modified" },
		...problemResponses(400, 403, 416),
	},
});

/** The optional body of `POST /v1/jobs/{id}/share`: none or blank means defaults. */
async function shareBody(req: Request): Promise<z.infer<typeof CreateShareBodySchema>> {
	const type = req.headers.get("content-type");
	const empty = req.body === null || req.headers.get("content-length") === "0";
	// Refused before a byte is read: only JSON is parsed (the body limit caps what JSON may be read).
	if (!empty && type !== null && !/^application\/(?:[\w.+-]+\+)?json\b/i.test(type)) {
		throw new ApiError(
			"unsupported_media_type",
			`The body must be JSON (Content-Type: application/json), not ${type}.`,
			{
				errors: [{ path: "json", message: "must be sent as application/json" }],
			},
		);
	}
	const raw = (await req.text()).trim();
	if (!raw) return {};
	let parsed: unknown;
	try {
		parsed = JSON.parse(raw);
	} catch {
		throw new ApiError("invalid_request", "The body is not valid JSON.", {
			errors: [{ path: "json", message: "invalid JSON" }],
		});
	}
	const body = CreateShareBodySchema.safeParse(parsed);
	if (!body.success) {
		throw new ApiError("invalid_request", "The request is not valid.", {
			errors: body.error.issues.map((i) => ({ path: ["json", ...i.path].join("."), message: i.message })),
		});
	}
	return body.data;
}

/** One answer for every refusal, so a link reveals nothing about which part was wrong or whether the job exists. */
const denied = (detail: string) => new ApiError("forbidden", detail);

export const shareRoutes = newRouter()
	.openapi(createShareRoute, async (c) => {
		const job = await loadOwnJob(c, c.req.valid("param").id);
		if (job.status !== "succeeded") {
			throw new ApiError("not_ready", `The job is ${job.status}; a share link exists once it has succeeded.`);
		}
		const ttl = (await shareBody(c.req.raw)).expires_in_s ?? DEFAULT_SHARE_TTL_S;
		const { share } = await getAccountSecrets(c.env, job.spec.account_id);
		const exp = shareExpiry(ttl);
		const url = await signShareUrl(share, new URL(c.req.url).origin, job.spec.id, exp);
		return c.json({ url, expires_at: new Date(exp * 1000).toISOString() }, 200);
	})
	.openapi(rotateShareRoute, async (c) => {
		const now = new Date();
		await rotateShareSecret(c.env, c.get("caller").accountId, now);
		c.get("log").info("share_secret_rotated");
		return c.json({ rotated_at: now.toISOString() }, 200);
	})
	.openapi(serveShareRoute, async (c) => {
		const jobId = c.req.param("job_id");
		if (!JOB_ID.test(jobId)) throw denied("This share link is not valid.");
		const accountId = await getJobAccount(c.env.DB, jobId);
		if (!accountId) throw denied("This share link is not valid.");
		const { share } = await getAccountSecrets(c.env, accountId);
		const verdict = await verifyShare(share, jobId, new URL(c.req.url).searchParams);
		if (!verdict.ok) {
			throw denied(verdict.reason === "expired" ? "This share link has expired." : "This share link is not valid.");
		}
		const job = await c.env.JOBS.getByName(jobId).get();
		if (job?.status !== "succeeded") throw denied("This share link is not valid.");
		const res = await serveObject(c.env.BUCKET, jobVideoKey(job), c.req.raw, {
			contentType: "video/mp4",
			filename: `${jobId}.mp4`,
			// Private: the URL is a credential; shared caches must not keep the bytes under it past revocation.
			cacheControl: "private, max-age=3600",
		});
		if (!res) throw denied("This share link is not valid.");
		return res;
	});
