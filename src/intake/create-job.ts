import { type PickResult, pickBackend } from "../backends/routing";
import { configOf } from "../config";
import { getReadyUpload, getUpload } from "../db/uploads";
import { ApiError } from "../errors";
import { secondsPerUnit, workUnits } from "../jobs/eta";
import type { JobRecord, JobSpec, UploadRef } from "../jobs/record";
import { newId, nowIso } from "../lib/ids";
import { findModel, listModels } from "../models/catalog";
import type { ModelManifest } from "../models/manifest";
import { parseResolution } from "../models/params";
import type { CreateJobBody } from "../schemas/jobs";
import { ingestUrlInput } from "../storage/url-input";
import { checkWebhookUrl, refusalMessage } from "../webhooks/url";

/**
 * Resolves `input.image` / `input.audio` to a READY upload of this account of the right media type. A URL is
 * fetched into R2 first (SSRF-guarded, size-capped, content-checked) and becomes an upload of its own.
 */
async function resolveUpload(env: Env, accountId: string, ref: string, field: "image" | "audio"): Promise<UploadRef> {
	const path = `json.input.${field}`;
	if (/^https?:\/\//i.test(ref)) {
		const ingested = await ingestUrlInput(env, accountId, ref, field);
		if (!ingested.ok) {
			throw new ApiError(ingested.code, ingested.message, { errors: [{ path, message: ingested.reason }] });
		}
		const { upload } = ingested;
		return { upload_id: upload.id, object_key: upload.object_key, content_type: upload.content_type };
	}
	const db = env.DB;
	const upload = await getReadyUpload(db, accountId, ref);
	if (!upload) {
		// Tell "not yet complete" apart from "no such upload" (another account's reads as missing).
		const pending = await getUpload(db, accountId, ref);
		if (pending) {
			throw new ApiError("conflict", `Upload ${ref} is ${pending.status}, not ready: complete it first.`, {
				errors: [{ path, message: `upload is ${pending.status}` }],
			});
		}
		throw new ApiError("invalid_request", `Upload ${ref} was not found.`, {
			errors: [{ path, message: "upload not found" }],
		});
	}
	if (!upload.content_type.startsWith(`${field}/`)) {
		throw new ApiError("invalid_request", `Upload ${ref} is ${upload.content_type}; input.${field} needs ${field}/*.`, {
			errors: [{ path, message: `must be an ${field} upload` }],
		});
	}
	return { upload_id: upload.id, object_key: upload.object_key, content_type: upload.content_type };
}

/** Turns a routing refusal into the problem the client sees: a switch with no default, so new reasons must be handled. */
function pickProblem(pick: Exclude<PickResult, { ok: true }>, model: string): ApiError {
	switch (pick.reason) {
		case "not_found":
			return new ApiError("invalid_request", `Backend "${pick.name}" does not exist.`, {
				errors: [{ path: "json.backend", message: "unknown backend" }],
			});
		case "disabled":
			return new ApiError("conflict", `Backend "${pick.name}" is disabled.`);
		case "model_unsupported":
			return new ApiError("conflict", `Backend "${pick.name}" does not serve model ${model}.`);
		case "none_available":
			return new ApiError("backend_unavailable", `No enabled backend serves model ${model}.`);
	}
}

/** A model id the catalog does not have: the problem names the ones it has. */
export async function unknownModelProblem(env: Env, id: string): Promise<ApiError> {
	const known = (await listModels(env)).map((m) => m.id);
	const detail = `There is no model "${id}"; the models are ${known.join(", ")}.`;
	return new ApiError("invalid_request", detail, {
		errors: [{ path: "json.model", message: `one of ${known.join(", ")}` }],
	});
}

/**
 * `start_by` must leave the job a chance (in the future) and mean something (before the deadline, which fails the
 * job anyway); `max_runtime_s` cannot outlast the deadline either.
 */
function checkTimeLimits(body: CreateJobBody, deadlineS: number, createdAtMs: number): void {
	const deadline = createdAtMs + deadlineS * 1000;
	if (body.start_by !== undefined) {
		const at = Date.parse(body.start_by);
		if (at <= createdAtMs) {
			throw new ApiError("invalid_request", "`start_by` is not in the future.", {
				errors: [{ path: "json.start_by", message: "must be in the future" }],
			});
		}
		if (at >= deadline) {
			throw new ApiError(
				"invalid_request",
				`\`start_by\` is past the job's deadline (${deadlineS} s after creation).`,
				{
					errors: [{ path: "json.start_by", message: `must be within ${deadlineS} s of now` }],
				},
			);
		}
	}
	if (body.max_runtime_s !== undefined && body.max_runtime_s > deadlineS) {
		throw new ApiError("invalid_request", `\`max_runtime_s\` exceeds the job's deadline of ${deadlineS} s.`, {
			errors: [{ path: "json.max_runtime_s", message: `must be at most ${deadlineS}` }],
		});
	}
}

/**
 * The job's work (frames × megapixels) from its parameters or the model's defaults, and the model's throughput
 * figure for it: what the ETA of src/jobs/eta.ts scales by.
 */
function jobWork(model: ModelManifest, params: Record<string, unknown>): NonNullable<JobSpec["work"]> {
	const numberOf = (name: string): number | undefined => {
		const given = params[name];
		if (typeof given === "number") return given;
		const d = model.parameters[name]?.default;
		return typeof d === "number" ? d : undefined;
	};
	const res = params.resolution ?? model.parameters.resolution?.default;
	const size = typeof res === "string" ? parseResolution(res) : null;
	const frames = (numberOf("duration_s") ?? 5) * (numberOf("fps") ?? 16);
	const units = workUnits(frames, size?.width ?? 640, size?.height ?? 640);
	return { units, seed_s_per_unit: model.throughput ? secondsPerUnit(model.throughput) : null };
}

/** The job's id and creation time, chosen before anything else (the concurrency reservation writes them first). */
export interface JobIdentity {
	id: string;
	created_at: string;
}

export const newJobIdentity = (): JobIdentity => ({ id: newId("job"), created_at: nowIso() });

/**
 * Validates the job's inputs and backend, then creates its Durable Object (which indexes it in D1 and arms the
 * first alarm). Throws `ApiError` for anything the client must fix.
 */
export async function createJob(
	env: Env,
	accountId: string,
	body: CreateJobBody,
	requestOrigin: string,
	identity: JobIdentity = newJobIdentity(),
): Promise<JobRecord> {
	const config = configOf(env);
	if (body.webhook) {
		const checked = checkWebhookUrl(body.webhook.url, config.allowLoopbackWebhooks);
		if (!checked.ok) {
			const detail = refusalMessage(checked.reason);
			throw new ApiError("invalid_request", detail, { errors: [{ path: "json.webhook.url", message: detail }] });
		}
	}
	checkTimeLimits(body, config.jobDeadlineS, Date.parse(identity.created_at));
	const image = await resolveUpload(env, accountId, body.input.image, "image");
	const audio = body.input.audio ? await resolveUpload(env, accountId, body.input.audio, "audio") : undefined;
	const model = await findModel(env, body.model);
	if (!model) throw await unknownModelProblem(env, body.model);
	const pick = await pickBackend(env, model, body.backend);
	if (!pick.ok) throw pickProblem(pick, body.model);
	const { image: _i, audio: _a, ...params } = body.input;
	const { id } = identity;
	const spec: JobSpec = {
		id,
		account_id: accountId,
		model: body.model,
		created_at: identity.created_at,
		origin: config.publicUrl ?? requestOrigin,
		inputs: audio ? { image, audio } : { image },
		params,
		webhook: body.webhook ?? null,
		backend: {
			name: pick.row.name,
			kind: pick.row.kind,
			price_per_second_usd: pick.row.price_per_second_usd,
			pinned: body.backend !== undefined,
		},
		deadline_s: config.jobDeadlineS,
		...(body.priority ? { priority: body.priority } : {}),
		...(body.start_by ? { start_by: new Date(body.start_by).toISOString() } : {}),
		...(body.max_runtime_s !== undefined ? { max_runtime_s: body.max_runtime_s } : {}),
		work: jobWork(model, params),
	};
	return env.JOBS.getByName(id).create(spec);
}
