/**
 * The workerd side of the pod emulator: a `pod` backend pointing at the emulator, calls to its protocol and its
 * control API, and the relay of its transfers through the Worker (see server.ts for why the test performs them).
 * The Worker-side helpers (keys, uploads, the job object) are in test/helpers.
 */
import { inject } from "vitest";
import { ADMIN, call } from "../../helpers/api";

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

/**
 * Performs the transfers the emulator hands over (server.ts, relay mode): GETs the signed input URLs and PUTs the
 * emulator's video bytes to the signed output URL (or, per its `upload_plan`, to the part URLs `parts_url` answers), all
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
				put: { url: string; headers: Record<string, string>; max_size: number };
				parts_url?: { url: string; headers: Record<string, string> };
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
		const partsUrl = info.input.output.parts_url;
		if (!partsUrl) throw new Error("the job input has no parts_url");
		const asked = await call(partsUrl.url, {
			method: "POST",
			headers: partsUrl.headers,
			body: JSON.stringify({ size: video.byteLength, part_size: info.upload_plan.parts[0]?.length }),
		});
		if (asked.status !== 200) throw new Error(`parts_url answered ${asked.status}: ${await asked.text()}`);
		const offered = (await asked.json()) as {
			parts: { part_number: number; url: string; headers: Record<string, string> }[];
		};
		for (const p of info.upload_plan.parts.filter((x) => !x.skip)) {
			const target = offered.parts.find((x) => x.part_number === p.part_number);
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
