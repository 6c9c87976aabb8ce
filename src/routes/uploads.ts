import { createRoute, type z } from "@hono/zod-openapi";
import { newRouter } from "../app";
import { requireKey } from "../auth/middleware";
import { findReadyBySha256, getUpload, insertUpload, type UploadRow } from "../db/uploads";
import { ApiError, notFound, problemResponses } from "../errors";
import { newId, nowIso } from "../lib/ids";
import {
	AUDIO_TYPES,
	CreatedUploadSchema,
	CreateUploadBodySchema,
	IdParamSchema,
	IMAGE_TYPES,
	type PartTargetSchema,
	UploadSchema,
} from "../schemas/uploads";
import { objectKeys, signerFor, type UrlSigner } from "../storage";
import { maxBytesFor } from "../storage/limits";
import { missingParts, partCount, partLength, planPartSize } from "../storage/multipart";
import { failUpload, settleUpload, storedParts } from "../storage/settle";
import { mediaKind, normalizeMediaType } from "../storage/sniff";

const security = [{ apiKey: [] }];

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

function parseMedia(stored: string | null | undefined): { width?: number; height?: number; duration_s?: number } {
	if (!stored) return {};
	try {
		const m = JSON.parse(stored) as Record<string, unknown>;
		const pick = (k: string) => (typeof m[k] === "number" ? { [k]: m[k] as number } : {});
		return { ...pick("width"), ...pick("height"), ...pick("duration_s") };
	} catch {
		return {};
	}
}

/** The public shape of an upload row. */
export function toUpload(row: UploadRow): z.infer<typeof UploadSchema> {
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
		...parseMedia(row.media),
		...(row.source_url ? { source_url: row.source_url } : {}),
	};
}

const createUploadRoute = createRoute({
	method: "post",
	path: "/v1/uploads",
	tags: ["Uploads"],
	summary: "Start an upload: get a URL (or part URLs) to PUT the bytes to",
	description:
		"Small files get one PUT URL; above the multipart threshold, `upload.multipart` lists one URL per part. URLs are R2 presigned S3 URLs when R2 S3 credentials are configured, else Worker-signed; clients use both the same way.",
	security,
	middleware: [requireKey("jobs:write")] as const,
	request: { body: { required: true, content: { "application/json": { schema: CreateUploadBodySchema } } } },
	responses: {
		200: {
			description: "Deduplicated: an existing ready upload",
			content: { "application/json": { schema: CreatedUploadSchema } },
		},
		201: { description: "Created", content: { "application/json": { schema: CreatedUploadSchema } } },
		...problemResponses(400, 401, 403, 413, 415),
	},
});

const completeUploadRoute = createRoute({
	method: "post",
	path: "/v1/uploads/{id}/complete",
	tags: ["Uploads"],
	summary: "Assemble (multipart) and verify the stored bytes, and mark the upload ready",
	description:
		"Idempotent. 409 `not_ready` while bytes or parts are missing (the problem lists them); 422 when they fail a check (size, type, sha256, image dimensions, audio duration): they are deleted.",
	security,
	middleware: [requireKey("jobs:write")] as const,
	request: { params: IdParamSchema },
	responses: {
		200: { description: "Ready", content: { "application/json": { schema: UploadSchema } } },
		...problemResponses(401, 403, 404, 409, 422),
	},
});

const abortUploadRoute = createRoute({
	method: "post",
	path: "/v1/uploads/{id}/abort",
	tags: ["Uploads"],
	summary: "Abandon a pending upload: its stored bytes and parts are freed",
	description: "Idempotent; the upload becomes `failed` with error code `aborted`. A ready upload: 409.",
	security,
	middleware: [requireKey("jobs:write")] as const,
	request: { params: IdParamSchema },
	responses: {
		200: { description: "Aborted", content: { "application/json": { schema: UploadSchema } } },
		...problemResponses(401, 403, 404, 409),
	},
});

const getUploadRoute = createRoute({
	method: "get",
	path: "/v1/uploads/{id}",
	tags: ["Uploads"],
	summary: "Get an upload (a pending multipart upload lists its stored and missing parts)",
	security,
	middleware: [requireKey("jobs:read")] as const,
	request: { params: IdParamSchema },
	responses: {
		200: { description: "The upload", content: { "application/json": { schema: UploadSchema } } },
		...problemResponses(401, 403, 404),
	},
});

/** The part URLs of a multipart upload, each for its exact byte count. */
async function partTargets(
	signer: UrlSigner,
	row: Pick<UploadRow, "object_key" | "size">,
	uploadId: string,
	partSize: number,
	numbers: number[],
	expiresInS: number,
): Promise<z.infer<typeof PartTargetSchema>[]> {
	return Promise.all(
		numbers.map(async (n) => {
			const size = partLength(row.size, partSize, n);
			const signed = await signer.signPart(row.object_key, uploadId, n, { size, expiresInS });
			return { part_number: n, size, method: "PUT" as const, url: signed.url, headers: signed.headers };
		}),
	);
}

/** Throws the problem for a refused settlement. */
function refuse(result: { code: "not_ready" | "conflict" | "unprocessable"; message: string }): never {
	throw new ApiError(result.code, result.message);
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
		const limit = maxBytesFor(c.get("config").media, kind);
		if (body.size > limit) throw new ApiError("payload_too_large", `An ${kind} upload may be at most ${limit} bytes.`);
		const accountId = c.get("caller").accountId;
		const sha256 = body.sha256?.toLowerCase() ?? null;

		// Dedup: the same account sending the same bytes again gets the stored upload, no second transfer.
		if (sha256) {
			const existing = await findReadyBySha256(c.env.DB, accountId, sha256, type);
			if (existing && existing.size === body.size) return c.json({ ...toUpload(existing), deduplicated: true }, 200);
		}

		const id = newId("upl");
		const key = objectKeys.uploadKey(accountId, id);
		const signer = signerFor(c.env, new URL(c.req.url).origin);
		const expiresInS = c.get("config").uploadUrlTtlS;
		const threshold = c.get("config").multipart.thresholdBytes;
		const row: UploadRow = {
			id,
			account_id: accountId,
			filename: body.filename,
			content_type: type,
			size: body.size,
			sha256,
			status: "pending",
			object_key: key,
			error: null,
			etag: null,
			created_at: nowIso(),
			expires_at: new Date(Math.floor(Date.now() / 1000) * 1000 + expiresInS * 1000).toISOString(),
			completed_at: null,
		};

		if (body.size <= threshold) {
			const upload = await signer.signPut(key, { contentType: type, size: body.size, expiresInS });
			row.expires_at = upload.expires_at;
			await insertUpload(c.env.DB, row);
			return c.json({ ...toUpload(row), upload: { ...upload, method: "PUT" as const } }, 201);
		}

		// Multipart through the binding in both flavours: R2 accepts S3 part PUTs into an upload it created.
		const partSize = planPartSize(body.size, c.get("config").multipart.partBytes);
		const multipart = await c.env.BUCKET.createMultipartUpload(key, { httpMetadata: { contentType: type } });
		row.multipart_upload_id = multipart.uploadId;
		row.part_size = partSize;
		await insertUpload(c.env.DB, row);
		const numbers = Array.from({ length: partCount(body.size, partSize) }, (_, i) => i + 1);
		const parts = await partTargets(signer, row, multipart.uploadId, partSize, numbers, expiresInS);
		return c.json(
			{
				...toUpload(row),
				multipart: {
					upload_id: multipart.uploadId,
					part_size: partSize,
					part_count: numbers.length,
					parts_stored: [],
					parts_missing: numbers,
					parts,
				},
				upload: { method: "PUT" as const, headers: {}, expires_at: row.expires_at },
			},
			201,
		);
	})
	.openapi(completeUploadRoute, async (c) => {
		const row = await getUpload(c.env.DB, c.get("caller").accountId, c.req.valid("param").id);
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
			case "pending": {
				const result = await settleUpload(c.env, row);
				if (!result.ok) refuse(result);
				return c.json(toUpload(result.row), 200);
			}
		}
	})
	.openapi(abortUploadRoute, async (c) => {
		const accountId = c.get("caller").accountId;
		const row = await getUpload(c.env.DB, accountId, c.req.valid("param").id);
		if (!row) throw notFound("Upload");
		if (row.status === "ready") throw new ApiError("conflict", "The upload is ready; it can no longer be aborted.");
		if (row.status === "pending") await failUpload(c.env, row, "aborted", "The upload was aborted by the client.");
		return c.json(toUpload((await getUpload(c.env.DB, accountId, row.id)) ?? row), 200);
	})
	.openapi(getUploadRoute, async (c) => {
		const row = await getUpload(c.env.DB, c.get("caller").accountId, c.req.valid("param").id);
		if (!row) throw notFound("Upload");
		if (row.status !== "pending" || !row.multipart_upload_id || !row.part_size) return c.json(toUpload(row), 200);
		const stored = await storedParts(c.env, row);
		const missing = missingParts(row.size, row.part_size, stored);
		// Fresh URLs for the missing parts, valid no longer than the upload itself.
		const left = Math.floor((Date.parse(row.expires_at) - Date.now()) / 1000);
		const signer = signerFor(c.env, new URL(c.req.url).origin);
		const parts = left > 0 ? await partTargets(signer, row, row.multipart_upload_id, row.part_size, missing, left) : [];
		return c.json(
			{
				...toUpload(row),
				multipart: {
					upload_id: row.multipart_upload_id,
					part_size: row.part_size,
					part_count: partCount(row.size, row.part_size),
					parts_stored: stored.map((p) => ({ part_number: p.partNumber, size: p.size })),
					parts_missing: missing,
					parts,
				},
			},
			200,
		);
	});
