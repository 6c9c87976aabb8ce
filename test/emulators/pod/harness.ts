/**
 * The workerd side of the pod emulator: helpers the jobs tests use to set up a key, uploads and a `pod` backend
 * pointing at the emulator, to step a job's alarm, and to relay the emulator's transfers through the Worker
 * (see server.ts for why the test performs them).
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { inject } from "vitest";
import type { JobRecord } from "../../../src/jobs/record";
import { pngBytes, wavBytes } from "../../helpers/media";

export const ORIGIN = "http://reelgate.test";
export const ADMIN = { authorization: "Bearer test-admin-token", "content-type": "application/json" };

export function call(path: string, init: RequestInit = {}): Promise<Response> {
	return exports.default.fetch(new Request(path.startsWith("http") ? path : `${ORIGIN}${path}`, init));
}

export function pod(): { url: string; token: string } {
	return inject("podEmulator");
}

/** Calls the emulator (its protocol or its `/_control` API) with its token. */
export function emulator(path: string, init: RequestInit = {}): Promise<Response> {
	const { url, token } = pod();
	const headers = new Headers(init.headers);
	headers.set("authorization", `Bearer ${token}`);
	return fetch(`${url}${path}`, { ...init, headers });
}

/** A fresh API key for `account`; returns headers that authenticate with it. */
export async function newAccount(account: string): Promise<Record<string, string>> {
	const res = await call("/v1/admin/keys", {
		method: "POST",
		headers: ADMIN,
		body: JSON.stringify({ name: `test-${account}`, account }),
	});
	if (res.status !== 201) throw new Error(`key creation failed: ${res.status} ${await res.text()}`);
	const { key } = (await res.json()) as { key: string };
	return { authorization: `Bearer ${key}`, "content-type": "application/json" };
}

/** Test media from the shared builders (test/helpers/media.ts). */
export const PNG = pngBytes();
export const wav = (seconds = 0.1): Uint8Array => wavBytes({ seconds });

/** Uploads bytes through the uploads API (create, PUT to the signed URL, complete); returns the `upl_…` id. */
export async function upload(
	auth: Record<string, string>,
	bytes: Uint8Array,
	contentType: string,
	filename: string,
	complete = true,
): Promise<string> {
	const created = await call("/v1/uploads", {
		method: "POST",
		headers: auth,
		body: JSON.stringify({ filename, content_type: contentType, size: bytes.byteLength }),
	});
	if (created.status !== 201) throw new Error(`upload create failed: ${created.status} ${await created.text()}`);
	const u = (await created.json()) as { id: string; upload: { url: string; headers: Record<string, string> } };
	const put = await call(u.upload.url, { method: "PUT", headers: u.upload.headers, body: bytes });
	if (!put.ok) throw new Error(`upload PUT failed: ${put.status} ${await put.text()}`);
	if (complete) {
		const done = await call(`/v1/uploads/${u.id}/complete`, { method: "POST", headers: auth });
		if (done.status !== 200) throw new Error(`upload complete failed: ${done.status} ${await done.text()}`);
	}
	return u.id;
}

/** Registers a `pod` backend pointing at the emulator (short call timeout, so `timeout` faults are quick). */
export async function putPodBackend(name: string, extra: Record<string, unknown> = {}): Promise<Response> {
	const { url, token } = pod();
	return call(`/v1/admin/backends/${name}`, {
		method: "PUT",
		headers: ADMIN,
		body: JSON.stringify({
			kind: "pod",
			priority: 10,
			price_per_second_usd: 0.0005,
			config: { url, token, timeout_ms: 500 },
			...extra,
		}),
	});
}

export function stub(jobId: string) {
	return env.JOBS.getByName(jobId);
}

export async function record(jobId: string): Promise<JobRecord> {
	const job = await stub(jobId).get();
	if (!job) throw new Error(`no job ${jobId}`);
	return job;
}

/**
 * Runs the job's alarm until `done` holds (at most `max` steps). A loop rather than a fixed count: the platform
 * may also fire the (due) alarm by itself, and the DO serializes both.
 */
export async function stepUntil(jobId: string, done: (job: JobRecord) => boolean, max = 12): Promise<JobRecord> {
	let job = await record(jobId);
	for (let i = 0; i < max && !done(job); i++) {
		await runDurableObjectAlarm(stub(jobId));
		job = await record(jobId);
	}
	if (!done(job)) throw new Error(`job ${jobId} stuck: ${JSON.stringify({ status: job.status, error: job.error })}`);
	return job;
}

/**
 * Performs the transfers the emulator hands over (server.ts, relay mode): GETs the signed input URLs and PUTs the
 * emulator's video bytes to the signed output URL (or, per its `upload_plan`, to the multipart part URLs), all
 * through the Worker, and reports the statuses (and the parts' etags) back. `upload` is the worst PUT status.
 */
export async function relayTransfers(remoteId: string): Promise<{ downloads: Record<string, number>; upload: number }> {
	const info = (await (await emulator(`/_control/jobs/${remoteId}`)).json()) as {
		awaiting_transfers: boolean;
		upload_plan:
			| { kind: "put" }
			| { kind: "parts"; parts: { part_number: number; offset: number; length: number; skip: boolean }[] };
		input: {
			inputs: Record<string, { url: string }>;
			output: {
				put: { url: string; headers: Record<string, string> };
				multipart?: { parts: { part_number: number; url: string; headers: Record<string, string> }[] };
			};
		};
	};
	if (!info.awaiting_transfers) throw new Error(`emulator job ${remoteId} is not awaiting transfers`);
	const downloads: Record<string, { status: number }> = {};
	for (const [name, ref] of Object.entries(info.input.inputs)) {
		const res = await call(ref.url);
		await res.arrayBuffer();
		downloads[name] = { status: res.status };
	}
	const video = new Uint8Array(await (await emulator(`/_control/jobs/${remoteId}/video`)).arrayBuffer());
	let status = 0;
	const parts: { part_number: number; etag: string }[] = [];
	if (info.upload_plan.kind === "parts") {
		for (const p of info.upload_plan.parts.filter((x) => !x.skip)) {
			const target = info.input.output.multipart?.parts.find((x) => x.part_number === p.part_number);
			if (!target) throw new Error(`the job input has no URL for part ${p.part_number}`);
			const body = video.slice(p.offset, p.offset + p.length);
			const headers = new Headers(target.headers);
			headers.set("content-length", String(body.byteLength));
			const res = await call(target.url, { method: "PUT", headers, body });
			await res.arrayBuffer();
			status = Math.max(status, res.status);
			parts.push({ part_number: p.part_number, etag: res.headers.get("etag") ?? "" });
		}
	} else {
		const put = await call(info.input.output.put.url, {
			method: "PUT",
			headers: info.input.output.put.headers,
			body: video,
		});
		await put.arrayBuffer();
		status = put.status;
	}
	await emulator(`/_control/jobs/${remoteId}/relayed`, {
		method: "POST",
		body: JSON.stringify({ downloads, upload: { status, parts } }),
	});
	return {
		downloads: Object.fromEntries(Object.entries(downloads).map(([k, v]) => [k, v.status])),
		upload: status,
	};
}

/** A prompt unique to this test, carrying emulator directives. */
export function prompt(...directives: string[]): string {
	return `a red fox ${crypto.randomUUID()} ${directives.map((d) => `#emu:${d}`).join(" ")}`.trim();
}
