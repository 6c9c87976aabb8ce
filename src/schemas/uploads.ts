/**
 * The public wire shapes of uploads: what `POST /v1/uploads` takes, what an upload looks like (with its signed
 * PUT or part URLs), and the upload id parameter. The routes validate with these, `/openapi.json` is generated from
 * them, the SDK infers its types from them.
 */
import { z } from "@hono/zod-openapi";

/** The media types an upload may have. */
export const IMAGE_TYPES = ["image/png", "image/jpeg", "image/webp"] as const;
export const AUDIO_TYPES = ["audio/wav", "audio/mpeg", "audio/flac", "audio/ogg"] as const;
export type ImageType = (typeof IMAGE_TYPES)[number];
export type AudioType = (typeof AUDIO_TYPES)[number];

/** Printable text only: the name ends up in `Content-Disposition` and logs. */
const hasNoControlChars = (s: string) => ![...s].some((ch) => (ch.codePointAt(0) ?? 0) < 0x20 || ch === "\x7f");

/** An upload's file name, as every way of creating one takes it. */
export const UploadFilenameSchema = z
	.string()
	.trim()
	.min(1)
	.max(255)
	.refine(hasNoControlChars, "must not contain control characters");

/** A client's SHA-256 of the bytes it sends, in hex (either case). */
export const Sha256HexSchema = z.string().regex(/^[0-9a-fA-F]{64}$/, "64 hex digits");

export const CreateUploadBodySchema = z
	.object({
		filename: UploadFilenameSchema,
		content_type: z
			.string()
			.min(1)
			.max(200)
			.openapi({ description: `One of ${[...IMAGE_TYPES, ...AUDIO_TYPES].join(", ")}.`, example: "image/png" }),
		size: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).openapi({ description: "Exact byte count." }),
		sha256: Sha256HexSchema.optional().openapi({
			description:
				"Hex SHA-256 of the bytes; checked at `complete`. When this account already has a ready upload with the same SHA-256 and type, that upload is returned (200, `deduplicated: true`) and nothing needs to be sent.",
		}),
	})
	.strict()
	.openapi("CreateUploadRequest");

const PartStatusSchema = z.object({ part_number: z.number().int(), size: z.number().int() });

export const PartTargetSchema = z
	.object({
		part_number: z.number().int(),
		size: z.number().int().openapi({ description: "Exact byte count of this part." }),
		method: z.literal("PUT"),
		url: z.string().url(),
		headers: z.record(z.string(), z.string()),
	})
	.openapi("UploadPartTarget");

const MultipartStatusSchema = z
	.object({
		upload_id: z.string(),
		part_size: z.number().int().openapi({ description: "Every part but the last has exactly this size." }),
		part_count: z.number().int(),
		parts_stored: z.array(PartStatusSchema),
		parts_missing: z.array(z.number().int()),
		parts: z.array(PartTargetSchema).openapi({
			description:
				"URLs for the missing parts (all of them at create): PUT bytes [(n-1)·part_size, n·part_size) to part n's URL, in any order or in parallel, then `complete`.",
		}),
	})
	.openapi("UploadMultipart");

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
		width: z.number().int().optional().openapi({ description: "Images: measured at `complete`." }),
		height: z.number().int().optional(),
		duration_s: z.number().optional().openapi({ description: "Audio: measured at `complete` when the headers say." }),
		source_url: z.string().optional().openapi({ description: "URL inputs: where the bytes were fetched from." }),
		deduplicated: z.boolean().optional().openapi({ description: "True when create returned an existing upload." }),
		multipart: MultipartStatusSchema.optional().openapi({
			description: "A pending multipart upload: which parts are stored and URLs for the rest, so a client resumes.",
		}),
	})
	.openapi("Upload");

const SignedRequestSchema = z
	.object({
		method: z.literal("PUT"),
		url: z
			.string()
			.url()
			.optional()
			.openapi({ description: "Single PUT: send all bytes here. Absent for multipart: use `multipart.parts`." }),
		headers: z.record(z.string(), z.string()),
		expires_at: z.string().datetime(),
	})
	.openapi("UploadTarget");

export const CreatedUploadSchema = UploadSchema.extend({ upload: SignedRequestSchema.optional() }).openapi(
	"CreatedUpload",
);

export const IdParamSchema = z.object({ id: z.string().openapi({ param: { name: "id", in: "path" } }) });
