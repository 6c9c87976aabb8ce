import type { JobView } from "../schemas/jobs";
import type { JobSnapshot } from "./record";

/** The public JSON of a job; links are absolute, from the origin the client used. */
export function toJobView(job: JobSnapshot, origin: string): JobView {
	const self = `${origin}/v1/jobs/${job.id}`;
	const links = { self, events: `${self}/events`, video: `${self}/video` };
	const view: JobView = {
		id: job.id,
		status: job.status,
		model: job.model,
		...(job.model_version ? { model_version: job.model_version } : {}),
		...(job.loras ? { loras: job.loras } : {}),
		created_at: job.created_at,
		progress: job.progress,
		backend: job.backend,
		attempts: job.attempts,
		links,
	};
	if (job.started_at) view.started_at = job.started_at;
	if (job.completed_at) view.completed_at = job.completed_at;
	if (job.error) view.error = job.error;
	if (job.output) view.output = { video: { url: links.video, ...job.output.video } };
	if (job.cost) view.cost = job.cost;
	if (job.queue) view.queue = job.queue;
	if (job.eta) view.eta = job.eta;
	if (job.priority) view.priority = job.priority;
	if (job.start_by) view.start_by = job.start_by;
	if (job.max_runtime_s !== undefined) view.max_runtime_s = job.max_runtime_s;
	if (job.webhook) view.webhook = job.webhook;
	return view;
}
