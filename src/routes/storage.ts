import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { newRouter } from "../app";
import { configOf } from "../config";
import { pendingUploadByKey, recordPart, uploadStatusByKey } from "../db/uploads";
import type { AppEnv } from "../env";
import { ApiError, invalid, problemResponses } from "../errors";
import { nowIso } from "../lib/ids";
import { UPLOADS_PREFIX, workerSignerFor } from "../storage";
import { uploadPartStream } from "../storage/multipart";
import { planOutputParts, signOutputParts } from "../storage/output";
import { isVideoKey, outputWritable, VIDEO_KEY } from "../storage/output-guard";
import { putStream } from "../storage/put-stream";
import { serveObject } from "../storage/serve-object";
import { decodeKeyPath, STORAGE_PATH, type StorageGrant } from "../storage/worker-signer";
import { fieldErrors, validationDetail } from "../validation";

/*
 * The Worker-signed storage route: the targets of `WorkerUrlSigner` URLs. No API key: the signature in the
 * query is the credential (and the access log records the path only, never the query).
 *
 * The key may contain slashes, which `createRoute`'s `{key}` cannot express, so the routes are documented
 * with `createRoute` + `registerPath` and served by plain handlers on `:key{.+}`.
 */

const SignedQuerySchema = z.object({
	method: z.enum(["PUT", "GET", "POST"]).openapi({ description: "The method the URL was signed for." }),
	expires: z.string().openapi({ description: "Expiry, unix seconds." }),
	ct: z.string().optional().openapi({ description: "PUT: the Content-Type the body must carry." }),
	size: z.string().optional().openapi({ description: "PUT: the exact byte count." }),
	max: z.string().optional().openapi({ description: "PUT: the largest byte count." }),
	part: z.string().optional().openapi({ description: "PUT of a multipart part: the part number." }),
	upload_id: z.string().optional().openapi({ description: "PUT of a multipart part: the multipart upload id." }),
	sig: z.string().openapi({ description: "HMAC-SHA256 over the fields above." }),
});
const KeyParamSchema = z.object({
	key: z.string().openapi({ description: "The object key, path-encoded (may contain `/`)." }),
});

export const StoredObjectSchema = z
	.object({ key: z.string(), size: z.number().int(), etag: z.string() })
	.openapi("StoredObject");

const putRoute = createRoute({
	method: "put",
	path: "/v1/storage/{key}",
	tags: ["Storage"],
	summary: "Store bytes at a signed PUT URL",
	description:
		"The target of an upload's `upload.url`. Send exactly the signed size with the signed Content-Type; the body is streamed into R2.",
	request: {
		params: KeyParamSchema,
		query: SignedQuerySchema,
		body: { content: { "*/*": { schema: z.string().openapi({ format: "binary" }) } } },
	},
	responses: {
		200: { description: "Stored", content: { "application/json": { schema: StoredObjectSchema } } },
		// 404: a path no signed URL has (a key with an encoded line break matches no route).
		...problemResponses(400, 403, 404, 409, 413, 415),
	},
});

const getRoute = createRoute({
	method: "get",
	path: "/v1/storage/{key}",
	tags: ["Storage"],
	summary: "Read bytes at a signed GET URL (HEAD too)",
	description: "Streams the object with `Accept-Ranges`, `ETag`, 206 for one `Range`, 304 for `If-None-Match`.",
	request: { params: KeyParamSchema, query: SignedQuerySchema },
	responses: {
		200: {
			description: "The object",
			content: { "application/octet-stream": { schema: z.string().openapi({ format: "binary" }) } },
		},
		206: { description: "The requested range" },
		304: { description: "Not modified" },
		...problemResponses(403, 404, 416),
	},
});

const PartsRequestSchema = z
	.object({
		size: z.number().int().min(1).openapi({ description: "The video's exact byte count." }),
		part_size: z.number().int().optional().openapi({
			description: "Bytes per part (every part but the last), 5 MiB to 5 GiB; default 64 MiB.",
		}),
	})
	.openapi("OutputPartsRequest");

const OutputPartsSchema = z
	.object({
		part_size: z.number().int(),
		parts: z.array(
			z.object({ part_number: z.number().int(), url: z.string(), headers: z.record(z.string(), z.string()) }),
		),
	})
	.openapi("OutputParts");

const partsRoute = createRoute({
	method: "post",
	path: "/v1/storage/{key}",
	tags: ["Storage"],
	summary: "Part URLs for a job's video too large for one PUT",
	description:
		"The target of a GPU job's `output.parts_url`, called only when the video exceeds `output.put.max_size`. " +
		"Opens the submission's multipart upload (the same one on a repeat) and answers one signed PUT per part, " +
		"each for its exact byte count; report the parts' etags as `output.video.parts`. 409 once the job is " +
		"finished or a later submission writes the video.",
	request: {
		params: KeyParamSchema,
		query: SignedQuerySchema,
		body: { required: true, content: { "application/json": { schema: PartsRequestSchema } } },
	},
	responses: {
		200: { description: "The part URLs", content: { "application/json": { schema: OutputPartsSchema } } },
		// 404: a path no signed URL has, as for PUT.
		...problemResponses(400, 403, 404, 409, 413),
	},
});

/** The object key from the raw path (not Hono's decoded param, so `%2F` and friends decode exactly once). */
function keyOf(c: Context<AppEnv>): string {
	const key = decodeKeyPath(new URL(c.req.url).pathname.slice(STORAGE_PATH.length));
	if (!key) throw new ApiError("forbidden", "The URL is not a valid signed storage URL.");
	return key;
}

/** Verifies the signed URL for `method`; every refusal is a 403 so nothing is learnt about the key. */
async function authorize(c: Context<AppEnv>, method: StorageGrant["method"]): Promise<StorageGrant> {
	const url = new URL(c.req.url);
	const verdict = await workerSignerFor(c.env, url.origin).verify(keyOf(c), url.searchParams);
	if (!verdict.ok) {
		switch (verdict.reason) {
			case "malformed":
				throw new ApiError("forbidden", "The URL is not a valid signed storage URL.");
			case "bad_signature":
				throw new ApiError("forbidden", "The URL's signature does not match.");
			case "expired":
				throw new ApiError("forbidden", "The URL has expired: ask for a new one.");
		}
	}
	if (verdict.grant.method !== method) {
		throw new ApiError("forbidden", `The URL was signed for ${verdict.grant.method}, not ${c.req.method}.`);
	}
	return verdict.grant;
}

/** The media type essence, for comparing Content-Types without case or whitespace differences. */
function essence(contentType: string): string {
	return contentType.trim().toLowerCase();
}

async function handlePut(c: Context<AppEnv>): Promise<Response> {
	const grant = await authorize(c, "PUT");
	const declared = c.req.header("content-length");
	if (declared === undefined) throw new ApiError("invalid_request", "Content-Length is required.");
	if (!/^\d{1,16}$/.test(declared)) throw new ApiError("invalid_request", "Content-Length is not a byte count.");
	const length = Number(declared);
	if (grant.size !== undefined && length !== grant.size) {
		throw new ApiError("invalid_request", `The URL is for exactly ${grant.size} bytes; Content-Length is ${length}.`);
	}
	if (grant.max !== undefined && length > grant.max) {
		throw new ApiError("payload_too_large", `The URL accepts at most ${grant.max} bytes.`);
	}
	if (!(await outputWritable(c.env, grant.key))) {
		throw new ApiError(
			"conflict",
			"This output URL is no longer current: the job has finished, or a later submission of it writes the video.",
		);
	}
	if (grant.part !== undefined && grant.uploadId !== undefined)
		return putPart(c, grant, grant.part, grant.uploadId, length);
	const contentType = c.req.header("content-type") ?? "";
	if (grant.ct !== undefined && essence(contentType) !== essence(grant.ct)) {
		throw new ApiError("unsupported_media_type", `The URL is for Content-Type ${grant.ct}; send it as signed.`);
	}
	// An upload's bytes are verified once, at `complete`; after that (or after expiry) its URL must not be
	// able to swap them.
	if (grant.key.startsWith(UPLOADS_PREFIX)) {
		const status = await uploadStatusByKey(c.env.DB, grant.key);
		if (status !== "pending") {
			throw new ApiError("conflict", `The upload is ${status ?? "gone"}: its bytes can no longer be replaced.`);
		}
	}
	const stored = await putStream(c.env.BUCKET, grant.key, c.req.raw.body, length, {
		httpMetadata: { contentType: grant.ct ?? contentType },
		// A job's video is written once: the same rule R2 presigned output URLs carry as `If-None-Match: *`.
		...(isVideoKey(grant.key) ? { onlyIf: new Headers({ "if-none-match": "*" }) } : {}),
	});
	if (!stored.ok && stored.reason === "precondition_failed") {
		throw new ApiError("conflict", "A video is already stored at this URL; it cannot be replaced.");
	}
	if (!stored.ok) throw new ApiError("invalid_request", "The body's length did not match Content-Length.");
	const { object } = stored;
	// Checked again once the bytes are in: `complete` may have run while they streamed. It verified a pinned copy
	// (src/storage/pin.ts), so these late bytes would reach no consumer; they are dropped and the client told.
	if (grant.key.startsWith(UPLOADS_PREFIX)) {
		const status = await uploadStatusByKey(c.env.DB, grant.key);
		if (status !== "pending") {
			await dropLateWrite(c.env.BUCKET, grant.key, object.etag);
			throw new ApiError(
				"conflict",
				`The upload became ${status ?? "gone"} while these bytes were sent: they were not kept, and its verified bytes are unchanged.`,
			);
		}
	}
	return c.json({ key: object.key, size: object.size, etag: object.etag }, 200, { etag: object.httpEtag });
}

/**
 * Stores one part of a multipart upload through the R2 binding (the Worker-signed twin of a presigned S3
 * `UploadPart`), answering its `ETag` like S3 does. An upload's parts are recorded in D1 so `GET` can say
 * which are stored and `complete` can assemble them.
 */
async function putPart(
	c: Context<AppEnv>,
	grant: StorageGrant,
	part: number,
	uploadId: string,
	length: number,
): Promise<Response> {
	const isUpload = grant.key.startsWith(UPLOADS_PREFIX);
	const row = isUpload ? await pendingUploadByKey(c.env.DB, grant.key) : null;
	if (isUpload && (!row || row.multipart_upload_id !== uploadId)) {
		throw new ApiError("conflict", "The upload is no longer pending: its parts can no longer be replaced.");
	}
	let stored: Awaited<ReturnType<typeof uploadPartStream>>;
	try {
		stored = await uploadPartStream(c.env.BUCKET, grant.key, uploadId, part, c.req.raw.body, length);
	} catch (err) {
		// The binding refuses parts of a completed or aborted multipart upload.
		throw new ApiError("conflict", "The multipart upload is no longer open.", { cause: err });
	}
	if (!stored.ok) throw new ApiError("invalid_request", "The body's length did not match Content-Length.");
	if (isUpload && !(await pendingUploadByKey(c.env.DB, grant.key))) {
		// Settled while this part streamed: the assembled object no longer takes parts, so it is unchanged.
		throw new ApiError("conflict", "The upload was completed or aborted while this part was sent: it was not kept.");
	}
	if (row) await recordPart(c.env.DB, row.id, { part_number: part, etag: stored.etag, size: length }, nowIso());
	return c.json({ part_number: part, etag: stored.etag, size: length }, 200, { etag: `"${stored.etag}"` });
}

/** Deletes a late write to an upload's key, unless yet another write replaced it meanwhile (that one answers for itself). */
async function dropLateWrite(bucket: R2Bucket, key: string, etag: string): Promise<void> {
	const now = await bucket.head(key);
	if (now?.etag === etag) await bucket.delete(key);
}

/**
 * A GPU worker's request for the part URLs of a video larger than its single PUT: the job's Durable Object opens
 * (or finds) the submission's multipart upload, so no job pays for one it does not use.
 */
async function handleParts(c: Context<AppEnv>): Promise<Response> {
	const grant = await authorize(c, "POST");
	const jobId = VIDEO_KEY.exec(grant.key)?.[1];
	if (!jobId) throw new ApiError("forbidden", "Part URLs are signed for a job's video only.");
	let raw: unknown;
	try {
		raw = await c.req.json();
	} catch {
		throw invalid("The body must be JSON: { size, part_size? }.", [{ path: "json", message: "not JSON" }]);
	}
	const parsed = PartsRequestSchema.safeParse(raw);
	if (!parsed.success) {
		const errors = fieldErrors("json", parsed.error.issues);
		throw invalid(validationDetail(errors), errors);
	}
	const config = configOf(c.env);
	const plan = planOutputParts(parsed.data.size, parsed.data.part_size, config.maxVideoBytes);
	if (!plan.ok) {
		const errors = [{ path: `json.${plan.field}`, message: plan.message }];
		if (plan.field === "size") throw new ApiError("payload_too_large", `size must be ${plan.message}.`, { errors });
		throw invalid(`${plan.field} must be ${plan.message}.`, errors);
	}
	const uploadId = await c.env.JOBS.getByName(jobId).openOutputParts(grant.key);
	if (!uploadId) {
		throw new ApiError(
			"conflict",
			"This output URL is no longer current: the job has finished, or a later submission of it writes the video.",
		);
	}
	const origin = new URL(c.req.url).origin;
	const { size } = parsed.data;
	return c.json(
		await signOutputParts(c.env, origin, grant.key, uploadId, size, plan.partSize, config.backendUrlTtlS),
		200,
	);
}

async function handleGet(c: Context<AppEnv>): Promise<Response> {
	const grant = await authorize(c, "GET");
	const response = await serveObject(c.env.BUCKET, grant.key, c.req.raw, { cacheControl: "private, max-age=300" });
	if (!response) throw new ApiError("not_found", "No object at this URL.");
	return response;
}

export const storageRoutes = newRouter();
storageRoutes.openAPIRegistry.registerPath(putRoute);
storageRoutes.openAPIRegistry.registerPath(getRoute);
storageRoutes.openAPIRegistry.registerPath(partsRoute);
storageRoutes.put("/v1/storage/:key{.+}", handlePut);
// Hono answers HEAD with the GET handler and drops the body; `serveObject` skips the R2 read for HEAD.
storageRoutes.get("/v1/storage/:key{.+}", handleGet);
storageRoutes.post("/v1/storage/:key{.+}", handleParts);
