// What every view of a job must say about where it stands: `queue` exactly while it is queued, with a reason from
// the closed set (and a place consistent with it), and an `eta` until it ends, its start not after its finish and a
// running job's start its own. Reasons are read from real state, so one that the job's backend cannot produce
// (`cold_start`: only a booting vast.ai machine) must never appear for it.
import { QUEUE_REASONS } from "../../src/schemas/jobs";

export interface StandingView {
	status: string;
	started_at?: string;
	queue?: { reason: string; position: number; ahead: number; since: string; retry_at?: string };
	eta?: { start_at: string; finish_at: string; basis: string; samples: number };
}

const TERMINAL = ["succeeded", "failed", "canceled"];

/** `onVast`: whether the job was sent to a vast.ai backend, the one kind whose machines boot (`cold_start`). */
export function standingProblems(view: StandingView, onVast: boolean): string[] {
	const problems: string[] = [];
	const { status, queue, eta } = view;
	if (TERMINAL.includes(status)) {
		if (queue) problems.push(`${status}, yet queue ${JSON.stringify(queue)}`);
		if (eta) problems.push(`${status}, yet eta ${JSON.stringify(eta)}`);
		return problems;
	}
	if (status === "queued" && !queue) problems.push("queued without queue");
	if (status !== "queued" && queue) problems.push(`${status} with queue ${JSON.stringify(queue)}`);
	if (queue) {
		if (!(QUEUE_REASONS as readonly string[]).includes(queue.reason)) problems.push(`unknown reason ${queue.reason}`);
		if (queue.reason === "cold_start" && !onVast) problems.push("cold_start without a vast.ai backend");
		const placed = queue.reason === "waiting_for_capacity";
		if (placed ? queue.position < 1 || queue.ahead < queue.position - 1 : queue.position !== 0) {
			problems.push(`${queue.reason} at position ${queue.position}, ${queue.ahead} ahead`);
		}
		if (Number.isNaN(Date.parse(queue.since))) problems.push(`queue.since ${queue.since}`);
	}
	if (!eta) problems.push(`${status} without eta`);
	else {
		const start = Date.parse(eta.start_at);
		const finish = Date.parse(eta.finish_at);
		if (!(start <= finish)) problems.push(`eta starts ${eta.start_at} after it finishes ${eta.finish_at}`);
		if (status === "running" && view.started_at && eta.start_at !== view.started_at) {
			problems.push(`running since ${view.started_at}, eta starts ${eta.start_at}`);
		}
	}
	return problems;
}
