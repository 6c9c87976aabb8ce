import { createRoute, z } from "@hono/zod-openapi";
import { newRouter } from "../app";
import { requireAdmin } from "../auth/middleware";
import { ApiError, notFound, problemResponses } from "../errors";
import { COMFY_FOLDERS, ModelFileSchema } from "../models/manifest";

/**
 * Model files in the operator's R2 bucket, under `models/{folder}/{name}` (a manifest's `r2_key`): uploaded once by
 * `npm run models -- push FILE --folder unet` in parts through these routes, so no R2 credential leaves the Worker
 * and a failed upload resumes from the parts already stored (the CLI keeps their etags). The sha256 the CLI
 * computed, and the size, are recorded on the object; completing checks the size the parts add up to.
 */

const security = [{ adminToken: [] }];
/** A part: large enough that a 14 GB file is ~220 requests, small enough for one Worker request body. */
const DEFAULT_PART_BYTES = 64 * 1024 * 1024;

const keyOf = (folder: string, name: string) => `models/${folder}/${name}`;

const CreateBodySchema = z
	.object({
		folder: z.enum(COMFY_FOLDERS),
		name: ModelFileSchema.shape.name,
		size: z.number().int().min(1),
		sha256: z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits"),
		part_size: z
			.number()
			.int()
			.min(1024 * 1024)
			.max(96 * 1024 * 1024)
			.optional(),
	})
	.strict()
	.openapi("ModelFileUploadRequest");

const StoredSchema = z
	.object({
		key: z.string().openapi({ description: "The manifest's `r2_key`." }),
		state: z.enum(["complete", "uploading"]),
		size: z.number().int(),
		sha256: z.string(),
		upload_id: z.string().optional(),
		part_size: z.number().int().optional(),
	})
	.openapi("ModelFileUpload");

const UploadParams = z.object({
	upload_id: z
		.string()
		.min(1)
		.max(1024)
		.openapi({ param: { name: "upload_id", in: "path" } }),
});
const KeyQuery = z.object({
	key: z
		.string()
		.regex(/^models\/[A-Za-z0-9._/-]{1,400}$/)
		.openapi({ param: { name: "key", in: "query" } }),
});

const createRoute_ = createRoute({
	method: "post",
	path: "/v1/admin/model-files",
	tags: ["Admin"],
	summary: "Start (or find complete) the upload of a model file into R2",
	security,
	middleware: [requireAdmin] as const,
	request: { body: { required: true, content: { "application/json": { schema: CreateBodySchema } } } },
	responses: {
		200: {
			description: "Already stored with that size and sha256",
			content: { "application/json": { schema: StoredSchema } },
		},
		201: { description: "A new multipart upload", content: { "application/json": { schema: StoredSchema } } },
		...problemResponses(400, 401, 403),
	},
});

const partRoute = createRoute({
	method: "put",
	path: "/v1/admin/model-files/{upload_id}/parts/{part_number}",
	tags: ["Admin"],
	summary: "Store one part of a model file",
	security,
	middleware: [requireAdmin] as const,
	request: {
		params: UploadParams.extend({
			part_number: z.coerce
				.number()
				.int()
				.min(1)
				.max(10_000)
				.openapi({ param: { name: "part_number", in: "path" } }),
		}),
		query: KeyQuery,
		body: {
			required: true,
			content: { "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) } },
		},
	},
	responses: {
		200: {
			description: "The part's etag, for the completion",
			content: { "application/json": { schema: z.object({ part_number: z.number().int(), etag: z.string() }) } },
		},
		...problemResponses(400, 401, 403, 404),
	},
});

const completeRoute = createRoute({
	method: "post",
	path: "/v1/admin/model-files/{upload_id}/complete",
	tags: ["Admin"],
	summary: "Assemble a model file from its parts",
	security,
	middleware: [requireAdmin] as const,
	request: {
		params: UploadParams,
		query: KeyQuery,
		body: {
			required: true,
			content: {
				"application/json": {
					schema: z
						.object({
							parts: z
								.array(z.object({ part_number: z.number().int().min(1), etag: z.string().min(1) }).strict())
								.min(1)
								.max(10_000),
						})
						.strict()
						.openapi("ModelFileCompleteRequest"),
				},
			},
		},
	},
	responses: {
		200: { description: "Stored", content: { "application/json": { schema: StoredSchema } } },
		...problemResponses(400, 401, 403, 404, 409),
	},
});

export const adminModelFilesRoutes = newRouter()
	.openapi(createRoute_, async (c) => {
		const body = c.req.valid("json");
		const key = keyOf(body.folder, body.name);
		const head = await c.env.BUCKET.head(key);
		const stored = { key, size: body.size, sha256: body.sha256 };
		if (head && head.size === body.size && head.customMetadata?.sha256 === body.sha256) {
			return c.json({ ...stored, state: "complete" as const }, 200);
		}
		const upload = await c.env.BUCKET.createMultipartUpload(key, {
			customMetadata: { sha256: body.sha256, size: String(body.size) },
		});
		c.get("log").info("model_file_upload_started", { key, size: body.size });
		const part_size = body.part_size ?? DEFAULT_PART_BYTES;
		return c.json({ ...stored, state: "uploading" as const, upload_id: upload.uploadId, part_size }, 201);
	})
	.openapi(partRoute, async (c) => {
		const { upload_id, part_number } = c.req.valid("param");
		const { key } = c.req.valid("query");
		const length = Number(c.req.header("content-length"));
		const body = c.req.raw.body;
		if (!body || !Number.isSafeInteger(length) || length <= 0) {
			throw new ApiError("invalid_request", "A part needs its bytes and their Content-Length.");
		}
		const upload = c.env.BUCKET.resumeMultipartUpload(key, upload_id);
		try {
			const part = await upload.uploadPart(part_number, body);
			return c.json({ part_number, etag: part.etag }, 200);
		} catch (err) {
			c.get("log").warn("model_file_part_failed", { key, part_number, error: err instanceof Error ? err.message : "" });
			throw notFound(`Upload ${upload_id} of ${key}`);
		}
	})
	.openapi(completeRoute, async (c) => {
		const { upload_id } = c.req.valid("param");
		const { key } = c.req.valid("query");
		const { parts } = c.req.valid("json");
		const upload = c.env.BUCKET.resumeMultipartUpload(key, upload_id);
		let object: R2Object;
		try {
			object = await upload.complete(parts.map((p) => ({ partNumber: p.part_number, etag: p.etag })));
		} catch (err) {
			throw new ApiError(
				"conflict",
				`Upload ${upload_id} of ${key} could not be completed: ${err instanceof Error ? err.message : "unknown"}.`,
			);
		}
		const expected = Number(object.customMetadata?.size);
		const sha256 = object.customMetadata?.sha256 ?? "";
		if (object.size !== expected) {
			// The parts do not add up to the file that was announced: nothing half-right stays under the key.
			await c.env.BUCKET.delete(key);
			throw new ApiError("conflict", `The parts of ${key} add up to ${object.size} bytes, not ${expected}.`);
		}
		c.get("log").info("model_file_stored", { key, size: object.size });
		return c.json({ key, state: "complete" as const, size: object.size, sha256 }, 200);
	});
