import { type PickResult, pickBackendBeside } from "../backends/routing";
import { configOf } from "../config";
import { getReadyUpload, getUpload } from "../db/uploads";
import { ApiError } from "../errors";
import { mintJobId } from "../jobs/job-id";
import type { JobRecord, JobSpec, UploadRef } from "../jobs/record";
import { nowIso } from "../lib/ids";
import { findModel, listModels } from "../models/catalog";
import { expectedRunSeconds } from "../models/run-time";
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

/** The job's id and creation time, chosen before anything else (the concurrency reservation writes them first). */
export interface JobIdentity {
	id: string;
	created_at: string;
}

/** A fresh identity for a job of `accountId`: its id carries the account (src/jobs/job-id.ts). */
export async function newJobIdentity(env: Env, accountId: string): Promise<JobIdentity> {
	return { id: await mintJobId(env.SIGNING_SECRET, accountId), created_at: nowIso() };
}

/**
 * Awaits every step at once and then throws the first refusal in the order given, so running independent storage
 * reads side by side never changes which problem a request with several faults gets.
 */
export async function settledInOrder<T extends readonly unknown[]>(
	steps: { [K in keyof T]: Promise<T[K]> },
): Promise<T> {
	const settled = await Promise.allSettled(steps);
	for (const step of settled) if (step.status === "rejected") throw step.reason;
	return settled.map((step) => (step as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

/**
 * Validates the job's inputs and backend and returns the spec its Durable Object is created with. The inputs, the
 * model and the backend rows are read side by side: one storage round trip (two when a backend must be ranked, whose
 * objects are then asked how loaded they are). Throws `ApiError` for anything the client must fix.
 */
export async function prepareJob(
	env: Env,
	accountId: string,
	body: CreateJobBody,
	requestOrigin: string,
	identity: JobIdentity,
): Promise<JobSpec> {
	const config = configOf(env);
	if (body.webhook) {
		const checked = checkWebhookUrl(body.webhook.url, config.allowLoopbackWebhooks);
		if (!checked.ok) {
			const detail = refusalMessage(checked.reason);
			throw new ApiError("invalid_request", detail, { errors: [{ path: "json.webhook.url", message: detail }] });
		}
	}
	const model = findModel(env, body.model);
	const [image, audio, found, pick] = await settledInOrder([
		resolveUpload(env, accountId, body.input.image, "image"),
		body.input.audio ? resolveUpload(env, accountId, body.input.audio, "audio") : Promise.resolve(undefined),
		model,
		pickBackendBeside(env, model, body.backend),
	] as const);
	if (!found || !pick) throw await unknownModelProblem(env, body.model);
	if (!pick.ok) throw pickProblem(pick, body.model);
	const { image: _i, audio: _a, ...params } = body.input;
	return {
		id: identity.id,
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
		...withExpectedRun(expectedRunSeconds(found, params)),
	};
}

const withExpectedRun = (seconds: number | undefined) => (seconds ? { expected_run_s: seconds } : {});

/** Creates the job's Durable Object (which stores it, arms its first alarm and indexes it in D1). */
export function createJob(env: Env, spec: JobSpec): Promise<JobRecord> {
	return env.JOBS.getByName(spec.id).create(spec);
}
