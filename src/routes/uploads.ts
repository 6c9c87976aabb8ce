import { createRoute, z } from "@hono/zod-openapi";
import { newRouter } from "../app";
import { requireKey } from "../auth/middleware";
import { getUpload, insertUpload, markUploadFailed, markUploadReady, type UploadRow } from "../db/uploads";
import { ApiError, notFound, problemResponses } from "../errors";
import { newId, nowIso } from "../lib/ids";
import { objectKeys, signerFor } from "../storage";
import { AUDIO_TYPES, IMAGE_TYPES, mediaKind, normalizeMediaType } from "../storage/sniff";
import { verifyUploadObject } from "../storage/verify-upload";

const security = [{ apiKey: [] }];

/** Printable text only: the name ends up in `Content-Disposition` and logs. */
const hasNoControlChars = (s: string) => ![...s].some((ch) => (ch.codePointAt(0) ?? 0) < 0x20 || ch === "\x7f");

export const CreateUploadBodySchema = z
	.object({
		filename: z.string().trim().min(1).max(255).refine(hasNoControlChars, "must not contain control characters"),
		content_type: z
			.string()
			.min(1)
			.max(200)
			.openapi({ description: `One of ${[...IMAGE_TYPES, ...AUDIO_TYPES].join(", ")}.`, example: "image/png" }),
		size: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).openapi({ description: "Exact byte count." }),
		sha256: z
			.string()
			.regex(/^[0-9a-fA-F]{64}$/, "64 hex digits")
			.optional()
			.openapi({ description: "Hex SHA-256 of the bytes; checked at `complete`." }),
	})
	.strict()
	.openapi("CreateUploadRequest");

export const UploadSchema = z
	.object({
		id: z.string().openapi({ example: "upl_0f3k2l1m9n8b7v6c5x4z3a2s1d" }),
		status: z.enum(["pending", "ready", "failed", "expired"]),
		filename: z.string(),
		content_type: z.string(),
		size: z.number().int(),
		sha256: z.string().optional(),
		created_at: z.string().datetime(),
		expires_at: z.string().datetime().openapi({ description: "When the upload URL stops working." }),
		completed_at: z.string().datetime().optional(),
		error: z.object({ code: z.string(), message: z.string() }).optional(),
	})
	.openapi("Upload");

const SignedRequestSchema = z
	.object({
		method: z.literal("PUT"),
		url: z.string().url(),
		headers: z.record(z.string(), z.string()),
		expires_at: z.string().datetime(),
	})
	.openapi("UploadTarget");

export const CreatedUploadSchema = UploadSchema.extend({ upload: SignedRequestSchema }).openapi("CreatedUpload");

const IdParamSchema = z.object({ id: z.string().openapi({ param: { name: "id", in: "path" } }) });

/** The stored `error` column: JSON `{ code, message }`; plain text (from elsewhere) is kept as the message. */
function parseError(stored: string): { code: string; message: string } {
	try {
		const parsed = JSON.parse(stored) as { code?: unknown; message?: unknown };
		if (typeof parsed.code === "string" && typeof parsed.message === "string") {
			return { code: parsed.code, message: parsed.message };
		}
	} catch {
		// Not JSON: fall through.
	}
	return { code: "unprocessable", message: stored };
}

function toUpload(row: UploadRow): z.infer<typeof UploadSchema> {
	return {
		id: row.id,
		status: row.status,
		filename: row.filename,
		content_type: row.content_type,
		size: row.size,
		...(row.sha256 ? { sha256: row.sha256 } : {}),
		created_at: row.created_at,
		expires_at: row.expires_at,
		...(row.completed_at ? { completed_at: row.completed_at } : {}),
		...(row.error ? { error: parseError(row.error) } : {}),
	};
}

const createUploadRoute = createRoute({
	method: "post",
	path: "/v1/uploads",
	tags: ["Uploads"],
	summary: "Start an upload: get a URL to PUT the bytes to",
	security,
	middleware: [requireKey("jobs:write")] as const,
	request: { body: { required: true, content: { "application/json": { schema: CreateUploadBodySchema } } } },
	responses: {
		201: { description: "Created", content: { "application/json": { schema: CreatedUploadSchema } } },
		...problemResponses(400, 401, 403, 413, 415),
	},
});

const completeUploadRoute = createRoute({
	method: "post",
	path: "/v1/uploads/{id}/complete",
	tags: ["Uploads"],
	summary: "Verify the stored bytes (size, type, sha256) and mark the upload ready",
	description: "Idempotent. 409 `not_ready` while no bytes are stored; 422 when they fail a check (they are deleted).",
	security,
	middleware: [requireKey("jobs:write")] as const,
	request: { params: IdParamSchema },
	responses: {
		200: { description: "Ready", content: { "application/json": { schema: UploadSchema } } },
		...problemResponses(401, 403, 404, 409, 422),
	},
});

const getUploadRoute = createRoute({
	method: "get",
	path: "/v1/uploads/{id}",
	tags: ["Uploads"],
	summary: "Get an upload",
	security,
	middleware: [requireKey("jobs:read")] as const,
	request: { params: IdParamSchema },
	responses: {
		200: { description: "The upload", content: { "application/json": { schema: UploadSchema } } },
		...problemResponses(401, 403, 404),
	},
});

/** The configured limit for a type's kind. */
function maxBytes(env: Env, kind: "image" | "audio"): number {
	return Number(kind === "image" ? env.MAX_IMAGE_BYTES : env.MAX_AUDIO_BYTES);
}

/** Verifies the stored bytes of a pending upload and settles it: ready, or failed with its bytes deleted. */
async function completeUpload(env: Env, row: UploadRow): Promise<UploadRow> {
	const verdict = await verifyUploadObject(env.BUCKET, {
		key: row.object_key,
		size: row.size,
		contentType: row.content_type,
		sha256: row.sha256,
	});
	if (verdict.ok) {
		await markUploadReady(env.DB, row.id, verdict.etag, nowIso());
		// Re-read: a concurrent `complete` may have settled it first; either way the row is the truth.
		return (await getUpload(env.DB, row.account_id, row.id)) ?? row;
	}
	let message: string;
	switch (verdict.reason) {
		case "missing":
			throw new ApiError("not_ready", "No bytes uploaded yet: PUT them to the upload URL, then complete.");
		case "changed":
			throw new ApiError("conflict", "The bytes changed while they were being verified; retry.");
		case "size":
			message = `The stored object has ${verdict.actual} bytes; the upload declared ${row.size}.`;
			break;
		case "type":
			message = `The bytes are not ${row.content_type}${verdict.sniffed ? ` (they look like ${verdict.sniffed})` : ""}.`;
			break;
		case "sha256":
			message = `The bytes' SHA-256 is ${verdict.actual}; the upload declared ${row.sha256}.`;
			break;
	}
	// Bytes that failed verification are never kept: nothing downstream may read them.
	await env.BUCKET.delete(row.object_key);
	await markUploadFailed(env.DB, row.id, { code: "unprocessable", message }, nowIso());
	throw new ApiError("unprocessable", message);
}

export const uploadsRoutes = newRouter()
	.openapi(createUploadRoute, async (c) => {
		const body = c.req.valid("json");
		const type = normalizeMediaType(body.content_type);
		if (!type) {
			throw new ApiError(
				"unsupported_media_type",
				`${body.content_type} is not accepted; use one of ${[...IMAGE_TYPES, ...AUDIO_TYPES].join(", ")}.`,
			);
		}
		const kind = mediaKind(type);
		const limit = maxBytes(c.env, kind);
		if (body.size > limit) throw new ApiError("payload_too_large", `An ${kind} upload may be at most ${limit} bytes.`);

		const accountId = c.var.caller.accountId;
		const id = newId("upl");
		const key = objectKeys.uploadKey(accountId, id);
		const upload = await signerFor(c.env, new URL(c.req.url).origin).signPut(key, {
			contentType: type,
			size: body.size,
			expiresInS: Number(c.env.UPLOAD_URL_TTL_S) || 3600,
		});
		const row: UploadRow = {
			id,
			account_id: accountId,
			filename: body.filename,
			content_type: type,
			size: body.size,
			sha256: body.sha256?.toLowerCase() ?? null,
			status: "pending",
			object_key: key,
			error: null,
			etag: null,
			created_at: nowIso(),
			expires_at: upload.expires_at,
			completed_at: null,
		};
		await insertUpload(c.env.DB, row);
		return c.json({ ...toUpload(row), upload: { ...upload, method: "PUT" as const } }, 201);
	})
	.openapi(completeUploadRoute, async (c) => {
		const row = await getUpload(c.env.DB, c.var.caller.accountId, c.req.valid("param").id);
		if (!row) throw notFound("Upload");
		switch (row.status) {
			case "ready":
				return c.json(toUpload(row), 200);
			case "failed": {
				// Idempotent: the same verdict as the first time.
				const message = row.error ? parseError(row.error).message : "The upload failed verification.";
				throw new ApiError("unprocessable", message);
			}
			case "expired":
				throw new ApiError("conflict", "The upload expired before it was completed: start a new one.");
			case "pending":
				return c.json(toUpload(await completeUpload(c.env, row)), 200);
		}
	})
	.openapi(getUploadRoute, async (c) => {
		const row = await getUpload(c.env.DB, c.var.caller.accountId, c.req.valid("param").id);
		if (!row) throw notFound("Upload");
		return c.json(toUpload(row), 200);
	});
