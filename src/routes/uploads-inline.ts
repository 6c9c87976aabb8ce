import { createRoute, z } from "@hono/zod-openapi";
import { newRouter } from "../app";
import { requireKey } from "../auth/middleware";
import { findReadyBySha256, insertUpload, type UploadRow } from "../db/uploads";
import { ApiError, problemResponses } from "../errors";
import { newId, nowIso } from "../lib/ids";
import {
	AUDIO_TYPES,
	CreatedUploadSchema,
	IMAGE_TYPES,
	Sha256HexSchema,
	UploadFilenameSchema,
} from "../schemas/uploads";
import { objectKeys } from "../storage";
import { maxBytesFor } from "../storage/limits";
import { putStream } from "../storage/put-stream";
import { failUpload, settleUpload } from "../storage/settle";
import { mediaKind, normalizeMediaType } from "../storage/sniff";
import { toUpload } from "./uploads";

/**
 * A small file in one request: the bytes are the body, streamed into R2 (never held whole), then verified and
 * pinned like any upload (src/storage/settle.ts). Saves a client the three round trips of create, PUT and complete
 * for the common case of one still image. Larger files keep the signed-URL flow, which can go straight to R2.
 */
export const INLINE_UPLOAD_PATH = "/v1/uploads/inline";

/** The largest body this route takes: a few MiB, well within one Worker request's memory and time. */
export const INLINE_UPLOAD_MAX_BYTES = 8 * 1024 * 1024;

const InlineQuerySchema = z.object({
	filename: UploadFilenameSchema.openapi({ example: "fox.png" }),
	sha256: Sha256HexSchema.optional().openapi({
		description:
			"Hex SHA-256 of the body: checked, and when this account already has a ready upload with these bytes it is answered (200, `deduplicated: true`) without reading the body.",
	}),
});

const binary = { schema: z.string().openapi({ format: "binary" }) };

const inlineRoute = createRoute({
	method: "post",
	path: INLINE_UPLOAD_PATH,
	tags: ["Uploads"],
	summary: `Upload a small file (at most ${INLINE_UPLOAD_MAX_BYTES / 1024 / 1024} MiB) in one request: it answers ready`,
	description:
		"The body is the file, with its media type as Content-Type and an exact Content-Length; it is verified like any upload (type from the bytes, size, SHA-256, image and audio bounds) and answered `ready`. Larger files: `POST /v1/uploads`.",
	security: [{ apiKey: [] }],
	middleware: [requireKey("jobs:write")] as const,
	request: {
		query: InlineQuerySchema,
		body: {
			required: true,
			content: Object.fromEntries([...IMAGE_TYPES, ...AUDIO_TYPES].map((t) => [t, binary])),
		},
	},
	responses: {
		200: {
			description: "Deduplicated: an existing ready upload with this SHA-256",
			content: { "application/json": { schema: CreatedUploadSchema } },
		},
		201: { description: "Stored and verified", content: { "application/json": { schema: CreatedUploadSchema } } },
		...problemResponses(400, 401, 403, 409, 413, 415, 422),
	},
});

export const inlineUploadRoutes = newRouter().openapi(inlineRoute, async (c) => {
	const { filename, sha256: declaredSha } = c.req.valid("query");
	const contentType = c.req.header("content-type") ?? "";
	const type = normalizeMediaType(contentType);
	if (!type) {
		throw new ApiError(
			"unsupported_media_type",
			`Content-Type ${contentType || "(none)"} is not accepted; send one of ${[...IMAGE_TYPES, ...AUDIO_TYPES].join(", ")}.`,
		);
	}
	const declared = c.req.header("content-length");
	if (declared === undefined || !/^\d{1,16}$/.test(declared)) {
		throw new ApiError("invalid_request", "Content-Length is required: send the file's exact byte count.");
	}
	const size = Number(declared);
	if (size === 0) throw new ApiError("invalid_request", "The body is empty: send the file.");
	const kind = mediaKind(type);
	const cap = Math.min(INLINE_UPLOAD_MAX_BYTES, maxBytesFor(c.get("config").media, kind));
	if (size > cap) {
		throw new ApiError(
			"payload_too_large",
			`At most ${cap} bytes go in one request (this is ${size}); larger files: POST /v1/uploads for signed URLs.`,
		);
	}
	const accountId = c.get("caller").accountId;
	const sha256 = declaredSha?.toLowerCase() ?? null;
	if (sha256) {
		const existing = await findReadyBySha256(c.env.DB, accountId, sha256, type);
		if (existing && existing.size === size) {
			await c.req.raw.body?.cancel();
			return c.json({ ...toUpload(existing), deduplicated: true }, 200);
		}
	}

	const id = newId("upl");
	const now = nowIso();
	const row: UploadRow = {
		id,
		account_id: accountId,
		filename,
		content_type: type,
		size,
		sha256,
		status: "pending",
		object_key: objectKeys.uploadKey(accountId, id),
		error: null,
		etag: null,
		created_at: now,
		// No URL was handed out: nothing can write the key once this request ends.
		expires_at: now,
		completed_at: null,
	};
	await insertUpload(c.env.DB, row);
	const stored = await putStream(c.env.BUCKET, row.object_key, c.req.raw.body, size, {
		httpMetadata: { contentType: type },
	});
	if (!stored.ok) {
		const message = "The body's length did not match Content-Length.";
		await failUpload(c.env, row, "invalid_request", message);
		throw new ApiError("invalid_request", message);
	}
	const settled = await settleUpload(c.env, row);
	if (!settled.ok) throw new ApiError(settled.code, settled.message);
	return c.json(toUpload(settled.row), 201);
});
