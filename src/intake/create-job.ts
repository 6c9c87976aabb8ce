import { type PickResult, pickBackendBeside } from "../backends/routing";
import { configOf } from "../config";
import { getReadyUpload, getUpload, type ReadyUpload } from "../db/uploads";
import { ApiError } from "../errors";
import { secondsPerUnit, workUnits } from "../jobs/eta";
import { mintJobId } from "../jobs/job-id";
import type { JobRecord, JobSpec, UploadRef } from "../jobs/record";
import { nowIso } from "../lib/ids";
import { checkOutboundUrl } from "../lib/url-guard";
import { findModel, listModels } from "../models/catalog";
import { MEDIA_KINDS, type ModelManifest } from "../models/manifest";
import {
	type FieldIssue,
	type InputMeasures,
	parseResolution,
	type ResolvedParams,
	resolveParams,
} from "../models/params";
import { expectedRunSeconds } from "../models/run-time";
import type { CreateJobBody } from "../schemas/jobs";
import { ingestUrlInput } from "../storage/url-input";
import { checkWebhookUrl } from "../webhooks/url";

/**
 * Resolves `input.image` / `input.audio` to a READY upload of this account of the right media type. A URL is
 * fetched into R2 first (SSRF-guarded, size-capped, content-checked) and becomes an upload of its own.
 */
async function resolveUpload(
	env: Env,
	accountId: string,
	ref: string,
	field: "image" | "audio",
): Promise<UploadRef & { duration_s?: number }> {
	const path = `json.input.${field}`;
	if (/^https?:\/\//i.test(ref)) {
		const ingested = await ingestUrlInput(env, accountId, ref, field);
		if (!ingested.ok) {
			throw new ApiError(ingested.code, `input.${field}: ${ingested.message}`, {
				errors: [{ path, message: ingested.reason }],
			});
		}
		return refOf(ingested.upload);
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
	return refOf(upload);
}

/** What the job keeps of an upload: where its verified bytes are and what they must be. */
function refOf(upload: ReadyUpload): UploadRef & { duration_s?: number } {
	return {
		upload_id: upload.id,
		object_key: upload.object_key,
		content_type: upload.content_type,
		...(upload.etag ? { etag: upload.etag } : {}),
		...(upload.sha256 ? { sha256: upload.sha256 } : {}),
		...measured(upload),
	};
}

/** The length verification measured of an upload, when it did (a model may take its default duration from it). */
function measured(upload: ReadyUpload): { duration_s?: number } {
	try {
		const media: unknown = upload.media ? JSON.parse(upload.media) : null;
		const d = typeof media === "object" && media !== null ? (media as { duration_s?: unknown }).duration_s : undefined;
		return typeof d === "number" && Number.isFinite(d) ? { duration_s: d } : {};
	} catch {
		return {};
	}
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
			// Not a passing state (busy or failing backends still take the job and queue it): an operator must act.
			return new ApiError(
				"model_unavailable",
				`No enabled backend serves model ${model}. An operator enables it by adding or enabling a backend that serves it (PUT /v1/admin/backends/{name} with ${model} in its "models", or no "models" list).`,
				{ errors: [{ path: "json.model", message: "no enabled backend serves it" }] },
			);
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

/** The upload as the job keeps it: what it reads and what those bytes must be, not what was measured of it. */
const ref = ({ duration_s: _measured, ...kept }: UploadRef & { duration_s?: number }): UploadRef => kept;

/** Field issues as the 400 problem: the first three in the detail, every one in `errors`. */
function issuesProblem(issues: FieldIssue[], code: "invalid_request" | "unprocessable" = "invalid_request"): ApiError {
	const shown = issues.slice(0, 3).map((i) => `${i.field}: ${i.message}`);
	const more = issues.length > 3 ? `; and ${issues.length - 3} more (see errors)` : "";
	return new ApiError(code, `${shown.join("; ")}${more}.`, {
		errors: issues.map((i) => ({ path: `json.${i.field}`, message: i.message })),
	});
}

/** The files `input` names that the model takes, required ones present, and no file it does not take. */
function fileIssues(model: ModelManifest, input: CreateJobBody["input"]): FieldIssue[] {
	const issues: FieldIssue[] = [];
	const takes = MEDIA_KINDS.filter((k) => model.inputs[k]);
	for (const kind of MEDIA_KINDS) {
		const spec = model.inputs[kind];
		if (spec?.required && input[kind] === undefined) {
			issues.push({ field: `input.${kind}`, message: `is required by ${model.id}` });
		}
		if (!spec && input[kind] !== undefined) {
			issues.push({ field: `input.${kind}`, message: `${model.id} takes no ${kind}; it takes ${takes.join(", ")}` });
		}
	}
	return issues;
}

/**
 * The model's parameters checked against its schema, once with no file measured (before anything is fetched) and
 * once more with the measured files, whose lengths may set defaults. Throws the 400 problem naming each field.
 */
function checkParams(model: ModelManifest, input: CreateJobBody["input"], measures: InputMeasures): ResolvedParams {
	const params: Record<string, unknown> = {};
	for (const [name, value] of Object.entries(input)) {
		if (!(MEDIA_KINDS as readonly string[]).includes(name) && name !== "loras") params[name] = value;
	}
	const resolved = resolveParams(model, params, measures);
	if (!resolved.ok) throw issuesProblem(resolved.issues);
	return resolved.params;
}

type JobLora = NonNullable<JobSpec["loras"]>[number];

/**
 * `input.loras` against the model's LoRA slot: the model takes LoRAs, no more than it allows, each URL one the
 * Worker's URL guard lets out (https to a public host; the GPU worker downloads it), each strength in range.
 * A URL the guard refuses is `unprocessable` (422), as for every other URL field; the other issues are 400s.
 */
function checkLoras(
	model: ModelManifest,
	loras: CreateJobBody["input"]["loras"],
	allowLoopback: boolean,
): { ok: true; loras: JobLora[] } | { ok: false; issues: FieldIssue[]; code: "invalid_request" | "unprocessable" } {
	if (!loras || loras.length === 0) return { ok: true, loras: [] };
	const slot = model.loras;
	const refused = (message: string) => ({
		ok: false as const,
		issues: [{ field: "input.loras", message }],
		code: "invalid_request" as const,
	});
	if (!slot) return refused(`${model.id} takes no LoRAs`);
	if (loras.length > slot.max) return refused(`${model.id} takes at most ${slot.max} LoRAs`);
	const issues: FieldIssue[] = [];
	const urlIssues: FieldIssue[] = [];
	const out: JobLora[] = [];
	const { minimum, maximum } = slot.strength;
	loras.forEach((l, i) => {
		const checked = checkOutboundUrl(l.url, { allowLoopback });
		if (!checked.ok) urlIssues.push({ field: `input.loras[${i}].url`, message: checked.message.replace(/\.$/, "") });
		const strength = l.strength ?? slot.strength.default;
		if (!Number.isFinite(strength) || strength < minimum || strength > maximum) {
			issues.push({ field: `input.loras[${i}].strength`, message: `must be a number from ${minimum} to ${maximum}` });
		}
		out.push({ url: l.url, strength, ...(l.sha256 ? { sha256: l.sha256 } : {}) });
	});
	if (urlIssues.length > 0) return { ok: false, issues: [...urlIssues, ...issues], code: "unprocessable" };
	return issues.length > 0 ? { ok: false, issues, code: "invalid_request" } : { ok: true, loras: out };
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

/** A settled step's value, or its refusal thrown. */
function settledValue<T>(step: PromiseSettledResult<T>): T {
	if (step.status === "rejected") throw step.reason;
	return step.value;
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
			throw new ApiError("unprocessable", `webhook.url: ${checked.message}`, {
				errors: [{ path: "json.webhook.url", message: checked.message }],
			});
		}
	}
	checkTimeLimits(body, config.jobDeadlineS, Date.parse(identity.created_at));
	// The model, the uploads and the backend rows are read side by side; the checks then run in the order a client
	// is told about faults: the model and its parameters first, then the uploads, then the backend.
	const modelLookup = findModel(env, body.model);
	const [imageStep, audioStep, modelStep, pickStep] = await Promise.allSettled([
		resolveUpload(env, accountId, body.input.image, "image"),
		body.input.audio ? resolveUpload(env, accountId, body.input.audio, "audio") : Promise.resolve(undefined),
		modelLookup,
		pickBackendBeside(env, modelLookup, body.backend),
	] as const);
	const model = settledValue(modelStep);
	if (!model) throw await unknownModelProblem(env, body.model);
	const files = fileIssues(model, body.input);
	if (files.length > 0) throw issuesProblem(files);
	checkParams(model, body.input, {});
	const loras = checkLoras(model, body.input.loras, config.urlInputs.allowLoopback);
	if (!loras.ok) throw issuesProblem(loras.issues, loras.code);
	const image = settledValue(imageStep);
	const audio = settledValue(audioStep);
	const modelParams = checkParams(
		model,
		body.input,
		audio?.duration_s !== undefined ? { audio: { duration_s: audio.duration_s } } : {},
	);
	const pick = settledValue(pickStep);
	if (!pick) throw await unknownModelProblem(env, body.model);
	if (!pick.ok) throw pickProblem(pick, body.model);
	if (loras.loras.length > 0 && (pick.row.kind === "comfyui" || pick.row.kind === "vastai")) {
		// A bare ComfyUI has no way to fetch a model file by URL: only the GPU worker downloads LoRAs.
		throw new ApiError(
			"conflict",
			`Backend "${pick.row.name}" is a ${pick.row.kind} backend, which cannot fetch LoRAs by URL; name a pod or runpod backend.`,
		);
	}
	const { image: _i, audio: _a, loras: _l, ...params } = body.input;
	return {
		id: identity.id,
		account_id: accountId,
		model: body.model,
		model_version: model.version,
		model_params: modelParams,
		...(loras.loras.length > 0 ? { loras: loras.loras } : {}),
		created_at: identity.created_at,
		origin: config.publicUrl ?? requestOrigin,
		inputs: audio ? { image: ref(image), audio: ref(audio) } : { image: ref(image) },
		params,
		webhook: body.webhook ?? null,
		backend: {
			name: pick.row.name,
			kind: pick.row.kind,
			price_per_second_usd: pick.row.price_per_second_usd,
			pinned: body.backend !== undefined,
		},
		deadline_s: config.jobDeadlineS,
		...withExpectedRun(expectedRunSeconds(model, params)),
		...(body.priority ? { priority: body.priority } : {}),
		...(body.start_by ? { start_by: new Date(body.start_by).toISOString() } : {}),
		...(body.max_runtime_s !== undefined ? { max_runtime_s: body.max_runtime_s } : {}),
		work: jobWork(model, params),
	};
}

const withExpectedRun = (seconds: number | undefined) => (seconds ? { expected_run_s: seconds } : {});

/** Creates the job's Durable Object (which stores it, arms its first alarm and indexes it in D1). */
export function createJob(env: Env, spec: JobSpec): Promise<JobRecord> {
	return env.JOBS.getByName(spec.id).create(spec);
}
