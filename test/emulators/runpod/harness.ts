/**
 * The workerd side of the RunPod emulator: register a `runpod` backend pointing at it, relay a job's transfers
 * and deliver the webhooks it queued, both through the Worker (see server.ts for why the test performs them).
 */
import { inject } from "vitest";
import { ADMIN, call } from "../../helpers/api";

export function runpod(): { url: string; apiKey: string; endpointId: string } {
	return inject("runpodEmulator");
}

/** Calls the emulator's control API (`/_control/…`, no auth). */
export function rpControl(path: string, init: RequestInit = {}): Promise<Response> {
	return fetch(`${runpod().url.replace(/\/v2$/, "")}/_control${path}`, init);
}

export async function putRunpodBackend(name: string, extra: Record<string, unknown> = {}): Promise<Response> {
	const { url, apiKey, endpointId } = runpod();
	const { config, ...rest } = extra as { config?: Record<string, unknown> };
	return call(`/v1/admin/backends/${name}`, {
		method: "PUT",
		headers: ADMIN,
		body: JSON.stringify({
			kind: "runpod",
			priority: 5,
			price_per_second_usd: 0.00044,
			config: { endpoint_id: endpointId, api_key: apiKey, base_url: url, timeout_ms: 500, ...config },
			...rest,
		}),
	});
}

export interface EmuRunpodJob {
	id: string;
	status: string;
	stage: string;
	statusCalls: number;
	webhook?: string;
	policy?: { executionTimeout: number; ttl: number };
	input: { inputs: Record<string, { url: string }>; output: { put: { url: string; headers: Record<string, string> } } };
	awaiting_transfers: boolean;
}

export async function rpJob(remoteId: string): Promise<EmuRunpodJob> {
	return (await (await rpControl(`/jobs/${remoteId}`)).json()) as EmuRunpodJob;
}

/** Moves the emulated job one step, as if its worker progressed with nobody polling. */
export async function rpAdvance(remoteId: string): Promise<string> {
	return ((await (await rpControl(`/jobs/${remoteId}/advance`, { method: "POST" })).json()) as { status: string })
		.status;
}

/** Performs the job's input GETs and output PUT through the Worker, then reports the statuses. */
export async function relayRunpod(remoteId: string): Promise<number> {
	const info = await rpJob(remoteId);
	if (!info.awaiting_transfers) throw new Error(`runpod job ${remoteId} is not awaiting transfers`);
	const downloads: Record<string, { status: number }> = {};
	for (const [name, ref] of Object.entries(info.input.inputs)) {
		const res = await call(ref.url);
		await res.arrayBuffer();
		downloads[name] = { status: res.status };
	}
	const video = new Uint8Array(await (await rpControl(`/jobs/${remoteId}/video`)).arrayBuffer());
	const put = await call(info.input.output.put.url, {
		method: "PUT",
		headers: info.input.output.put.headers,
		body: video,
	});
	await put.arrayBuffer();
	await rpControl(`/jobs/${remoteId}/relayed`, {
		method: "POST",
		body: JSON.stringify({ downloads, upload: { status: put.status } }),
	});
	return put.status;
}

/** Takes the webhooks the emulator queued for `jobId` and POSTs each to the Worker; returns their HTTP statuses. */
export async function deliverWebhooks(jobId: string): Promise<{ url: string; status: number }[]> {
	const take = `/webhooks/take?for=${encodeURIComponent(`/runpod/${jobId}?`)}`;
	const { deliveries } = (await (await rpControl(take, { method: "POST" })).json()) as {
		deliveries: { url: string; body: unknown }[];
	};
	const out: { url: string; status: number }[] = [];
	for (const d of deliveries) {
		const res = await call(d.url, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify(d.body),
		});
		await res.arrayBuffer();
		out.push({ url: d.url, status: res.status });
	}
	return out;
}
