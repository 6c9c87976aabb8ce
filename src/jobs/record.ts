import type { BackendKind } from "../schemas/backends";
import type { DeliveryStatus, JobPriority, Model } from "../schemas/jobs";
import type { Estimate, Eta } from "./eta";
import type { JobQueue } from "./queue";
import { isTerminal, type JobCost, type JobState } from "./state";

/** An upload a job reads, resolved at creation (the upload was READY and of the right type then). */
export interface UploadRef {
	upload_id: string;
	object_key: string;
	content_type: string;
	/** The R2 etag and SHA-256 of the verified bytes: every read for the job must find exactly these (absent on jobs from before). */
	etag?: string;
	sha256?: string;
}

/** What the client asked for, validated. */
export interface JobParams {
	prompt?: string;
	negative_prompt?: string;
	resolution?: string;
	duration_s?: number;
	fps?: number;
	seed?: number;
	steps?: number;
}

/** Everything fixed when the job is created. */
export interface JobSpec {
	id: string;
	account_id: string;
	model: Model;
	/** The manifest version the job runs; absent on jobs created before models were versioned. */
	model_version?: string;
	/**
	 * Every parameter's value as the model's schema resolved it at creation (client values, defaults, the drawn
	 * seed) and the values derived from them: what a workflow is filled with, the same at every submission.
	 */
	model_params?: { values: Record<string, string | number | boolean>; derived: Record<string, number> };
	/** The LoRAs the client asked for, checked against the model's slot, each with its strength. */
	loras?: { url: string; strength: number; sha256?: string }[];
	created_at: string;
	/** Origin for the signed URLs the GPU worker uses: PUBLIC_URL, else the creating request's origin. */
	origin: string;
	inputs: { image: UploadRef; audio?: UploadRef };
	params: JobParams;
	webhook: { url: string; events?: string[] } | null;
	/** The backend it runs on; `pinned`: the client named it, so the job never fails over elsewhere. */
	backend: { name: string; kind: BackendKind; price_per_second_usd: number; pinned?: boolean };
	/** Backends the job left after they failed it (failover), in order. */
	tried_backends?: string[];
	/** Seconds from creation after which the job fails with `timeout`. */
	deadline_s: number;
	/** The run time the model's throughput predicts for this job (absent: none published); times the polls. */
	expected_run_s?: number;
	/** Order among the account's own waiting jobs at a backend; absent: normal. */
	priority?: JobPriority;
	/** It fails with `not_started_in_time` when not running by then (ISO 8601). */
	start_by?: string;
	/** Its run is canceled this long after it started (`max_runtime_exceeded`). */
	max_runtime_s?: number;
	/** Its work in frames × megapixels, and the model's manifest figure for it (src/jobs/eta.ts); for the ETA. */
	work?: { units: number; seed_s_per_unit: number | null };
}

/** Webhook events a job gets when it names none (the contract's default). */
export const DEFAULT_WEBHOOK_EVENTS = ["succeeded", "failed", "canceled"] as const;

/** One webhook message of a job, as the job JSON shows it (never the secret or the signature). */
export interface WebhookDeliveryView {
	id: string;
	type: string;
	attempts: number;
	status: DeliveryStatus;
	last_status_code?: number;
	last_error?: string;
	next_attempt_at?: string;
}

/** The job's webhook endpoint and its deliveries (`deliveries` is absent inside event payloads). */
export interface JobWebhookView {
	url: string;
	events: string[];
	deliveries?: WebhookDeliveryView[];
}

/** What the job's GPU time cost, with what a client needs to check the bill. */
export interface JobCostView extends JobCost {
	/** The price of the backend (or rented machine) of the job's last submission. */
	price_per_second_usd: number;
	backend: string;
	backend_kind: string;
	/** Submissions the backend accepted; each one that ran was billed (abandoned runs included in the sums). */
	submissions: number;
}

/** The public fields of a job (what the API renders, plus links added per request). */
export interface JobSnapshot {
	id: string;
	account_id: string;
	status: JobState["status"];
	model: string;
	model_version?: string;
	loras?: { url: string; strength: number; sha256?: string }[];
	created_at: string;
	started_at: string | null;
	completed_at: string | null;
	progress: JobState["progress"];
	backend: { name: string; kind: string };
	attempts: number;
	error: JobState["error"];
	output: JobState["output"];
	cost: JobCostView | null;
	updated_at: string;
	/** Where the job stands while it waits (status `queued` only). */
	queue?: JobQueue;
	priority?: JobPriority;
	start_by?: string;
	max_runtime_s?: number;
	/** When the job should start and finish (not terminal only). */
	eta?: Eta;
	webhook?: JobWebhookView;
}

/** The full record the JobDO keeps. */
export interface JobRecord extends JobState {
	spec: JobSpec;
	updated_at: string;
	/** Epoch ms of the next alarm; null once terminal. */
	next_at: number | null;
	/** Consecutive transient failures, for the retry backoff. */
	transient_failures: number;
	/** The webhook deliveries, attached when the store loads a job that has a webhook. */
	deliveries?: WebhookDeliveryView[];
	/** Why the job waits and its place (while `queued`); null or absent otherwise. */
	queue?: JobQueue | null;
	/** What its backend measured about jobs like it, as of its last admission check. */
	estimate?: Estimate | null;
	/** When it should start and finish, as of its last step; null once terminal. */
	eta?: Eta | null;
	/** Where the latest submission writes its video (`jobVideoKey`); absent or null: the per-job key of old jobs. */
	output_key?: string | null;
}

/** A LoRA as the job shows it: the URL's query and fragment dropped, since they may hold a signature. */
function shownLora(l: { url: string; strength: number; sha256?: string }) {
	let url = l.url;
	try {
		const u = new URL(l.url);
		url = `${u.origin}${u.pathname}`;
	} catch {
		url = l.url.split(/[?#]/)[0] ?? "";
	}
	return { url, strength: l.strength, ...(l.sha256 ? { sha256: l.sha256 } : {}) };
}

export function snapshotOf(record: JobRecord): JobSnapshot {
	return {
		id: record.spec.id,
		account_id: record.spec.account_id,
		status: record.status,
		model: record.spec.model,
		...(record.spec.model_version ? { model_version: record.spec.model_version } : {}),
		...(record.spec.loras?.length ? { loras: record.spec.loras.map(shownLora) } : {}),
		created_at: record.spec.created_at,
		started_at: record.started_at,
		completed_at: record.completed_at,
		progress: record.progress,
		backend: { name: record.spec.backend.name, kind: record.spec.backend.kind },
		attempts: record.attempts,
		error: record.error,
		output: record.output,
		cost: costView(record),
		updated_at: record.updated_at,
		...(record.status === "queued" ? { queue: record.queue ?? unknownQueue(record) } : {}),
		...(record.eta && !isTerminal(record.status) ? { eta: record.eta } : {}),
		...(record.spec.priority ? { priority: record.spec.priority } : {}),
		...(record.spec.start_by ? { start_by: record.spec.start_by } : {}),
		...(record.spec.max_runtime_s !== undefined ? { max_runtime_s: record.spec.max_runtime_s } : {}),
		...webhookOf(record),
	};
}

/**
 * The cost as shown: the recorded spend with its price and backend. A job that ended without ever being submitted
 * cost nothing, which is known; one whose runs reported no execution time shows none.
 */
function costView(record: JobRecord): JobCostView | null {
	const spent = record.cost ?? (isTerminal(record.status) && record.attempts === 0 ? { gpu_seconds: 0, usd: 0 } : null);
	if (!spent) return null;
	const { backend } = record.spec;
	return {
		...spent,
		price_per_second_usd: backend.price_per_second_usd,
		backend: backend.name,
		backend_kind: backend.kind,
		submissions: record.attempts,
	};
}

/** A queued job with no recorded reason (stored before jobs recorded one, until its next step) says so. */
function unknownQueue(record: JobRecord): JobQueue {
	return { reason: "unknown", position: 0, ahead: 0, since: record.updated_at };
}

function webhookOf(record: JobRecord): { webhook?: JobWebhookView } {
	const hook = record.spec.webhook;
	if (!hook) return {};
	const webhook: JobWebhookView = { url: hook.url, events: [...(hook.events ?? DEFAULT_WEBHOOK_EVENTS)] };
	if (record.deliveries) webhook.deliveries = record.deliveries;
	return { webhook };
}
