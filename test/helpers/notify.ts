/** Helpers shared by the webhook, events and share tests: jobs run on the pod emulator, the webhook receiver. */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { inject } from "vitest";
import type { JobRecord } from "../../src/jobs/record";
import { prompt, putPodBackend, relayTransfers } from "../emulators/pod/harness";
import type { ReceivedWebhook, ScriptedResponse } from "../emulators/webhook-receiver/server";
import { call, PNG, upload } from "./api";
import { record, stepUntil, stub } from "./job-object";

/** A receiver path unique to this test, its full URL, and its control calls. */
export function hook(name: string) {
	const base = inject("webhookReceiver").url;
	const path = `/hooks/${name}-${crypto.randomUUID()}`;
	return {
		url: `${base}${path}`,
		async script(...responses: ScriptedResponse[]): Promise<void> {
			const res = await fetch(`${base}/_control/script?path=${encodeURIComponent(path)}`, {
				method: "POST",
				body: JSON.stringify({ responses }),
			});
			await res.arrayBuffer();
		},
		async received(): Promise<ReceivedWebhook[]> {
			const res = await fetch(`${base}/_control/received?path=${encodeURIComponent(path)}`);
			return ((await res.json()) as { requests: ReceivedWebhook[] }).requests;
		},
	};
}

/** Creates a job (pod emulator backend `backend`) and returns its id. */
export async function startJob(
	auth: Record<string, string>,
	backend: string,
	extra: Record<string, unknown> = {},
): Promise<string> {
	const res = await putPodBackend(backend);
	await res.arrayBuffer();
	const image = await upload(auth, PNG, "image/png", "fox.png");
	const created = await call("/v1/jobs", {
		method: "POST",
		headers: auth,
		body: JSON.stringify({ model: "preview", input: { image, prompt: prompt() }, backend, ...extra }),
	});
	if (created.status !== 202) throw new Error(`job creation failed: ${created.status} ${await created.text()}`);
	return ((await created.json()) as { id: string }).id;
}

/** Drives a job to success: steps to running, relays the emulator's transfers, steps to succeeded. */
export async function runToSuccess(jobId: string): Promise<JobRecord> {
	const running = await stepUntil(jobId, (j) => j.status === "running");
	await relayTransfers(running.remote_id ?? "");
	return stepUntil(jobId, (j) => j.status === "succeeded");
}

/** Makes every pending delivery due now (time travel through the object's storage instead of sleeping). */
export async function makeDeliveriesDue(jobId: string): Promise<void> {
	await runInDurableObject(stub(jobId), (_instance, state) => {
		state.storage.sql.exec("UPDATE webhook_deliveries SET next_attempt_at = 0 WHERE status = 'pending'");
	});
}

/** Runs the job's alarm until `done` holds for its record (the platform may also fire it; the DO serializes both). */
export async function alarmUntil(jobId: string, done: (job: JobRecord) => boolean, max = 10): Promise<JobRecord> {
	let job = await record(jobId);
	for (let i = 0; i < max && !done(job); i++) {
		await runDurableObjectAlarm(stub(jobId));
		job = await record(jobId);
	}
	if (!done(job)) throw new Error(`condition not reached: ${JSON.stringify(job.deliveries)}`);
	return job;
}
