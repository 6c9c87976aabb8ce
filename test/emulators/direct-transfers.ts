/**
 * What a GPU worker does with a job's signed URLs when the emulator can reach the Worker (`wrangler dev`): GET
 * each input, PUT the video. Shared by the pod and RunPod emulators in `transfers: "direct"` mode, with the upload
 * faults a real worker's network can produce:
 *   truncate  the PUT announces the whole length, sends half of the body, then the connection drops
 *   corrupt   the PUT carries the whole length, with bytes flipped on the way
 * Either way the emulated worker then reports the video it meant to write (size and sha256 of the intact bytes),
 * as a worker that lost the error would: the Worker's own verification must catch it.
 *
 * Like the GPU worker (gpu-worker/gpu_worker/transfer.py), a request that fails with a 5xx or no answer is tried
 * again, 4 attempts in all, 0.5 s apart at first and doubling; a 4xx is final, except the video URL's create-only
 * refusal (409/412) on a retry, which says an earlier attempt stored it.
 */

const ATTEMPTS = 4;
const FIRST_BACKOFF_MS = 500;

/** The worker's retry loop: `attempt` resolves with an HTTP status, or null when no answer came. */
async function withRetries(attempt: () => Promise<number | null>): Promise<number | null> {
	let status: number | null = null;
	for (let i = 0, delay = FIRST_BACKOFF_MS; i < ATTEMPTS; i++, delay *= 2) {
		if (i > 0) await new Promise((r) => setTimeout(r, delay));
		status = await attempt();
		if (status !== null && status < 500) return status;
	}
	return status;
}

export type UploadFault = "truncate" | "corrupt";

export interface SignedTarget {
	url: string;
	headers?: Record<string, string>;
}

/** GETs every input URL; the first failure as `GET name: status`, or null when all answered 200. */
export async function downloadInputs(inputs: Record<string, SignedTarget | undefined>): Promise<string | null> {
	for (const [name, ref] of Object.entries(inputs)) {
		const status = await withRetries(async () => {
			const res = await fetch(ref?.url ?? "").catch(() => null);
			await res?.arrayBuffer().catch(() => undefined);
			return res?.status ?? null;
		});
		if (status !== 200) return `GET ${name}: ${status ?? "unreachable"}`;
	}
	return null;
}

/** PUTs `video` to the signed target, applying `fault`; the HTTP status, or null when no answer came. */
export async function putVideo(target: SignedTarget, video: Uint8Array, fault?: UploadFault): Promise<number | null> {
	if (fault === "truncate") return putTruncated(target, video);
	const body = fault === "corrupt" ? corrupted(video) : video;
	let tries = 0;
	return withRetries(async () => {
		tries++;
		const res = await fetch(target.url, { method: "PUT", headers: target.headers, body }).catch(() => null);
		await res?.arrayBuffer().catch(() => undefined);
		// Like the GPU worker: the create-only URL refusing a retry means an earlier attempt stored the video.
		if (tries > 1 && (res?.status === 409 || res?.status === 412)) return 200;
		return res?.status ?? null;
	});
}

/** A copy with one byte in every 97 inverted (the length is unchanged, the content is not). */
function corrupted(video: Uint8Array): Uint8Array {
	const out = video.slice();
	for (let i = 32; i < out.byteLength; i += 97) out[i] = (out[i] ?? 0) ^ 0xff;
	return out;
}

interface NodeClientRequest {
	on(event: "error", cb: (err: Error) => void): void;
	on(event: "response", cb: (res: { statusCode?: number; resume(): void }) => void): void;
	write(chunk: Uint8Array, cb?: () => void): boolean;
	destroy(): void;
}

/**
 * Sends `Content-Length: <whole>` and half of the bytes, then destroys the socket: what a worker whose connection
 * dies mid-upload leaves behind. fetch cannot send fewer bytes than it announces, so this speaks node:http.
 */
async function putTruncated(target: SignedTarget, video: Uint8Array): Promise<number | null> {
	// A computed specifier: tsc checks these files with the workers types (see loopback-http.ts).
	const httpModule = "node:http";
	const http = (await import(httpModule)) as {
		request(url: string, options: { method: string; headers: Record<string, string> }): NodeClientRequest;
	};
	const headers = { ...(target.headers ?? {}), "content-length": String(video.byteLength) };
	const req = http.request(target.url, { method: "PUT", headers });
	return new Promise((resolve) => {
		req.on("error", () => resolve(null));
		req.on("response", (res) => {
			res.resume();
			resolve(res.statusCode ?? null);
		});
		req.write(video.subarray(0, Math.floor(video.byteLength / 2)), () => {
			// Give the bytes a moment to leave, then cut the connection with the body incomplete.
			setTimeout(() => {
				req.destroy();
				resolve(null);
			}, 50);
		});
	});
}

/**
 * RunPod's webhook: one POST of the job object; a non-2xx answer or a failed connection is retried twice,
 * `retryDelayMs` apart (RunPod: 10 s), then given up.
 */
export async function postWebhook(url: string, body: unknown, retryDelayMs = 10_000): Promise<boolean> {
	for (let attempt = 0; attempt < 3; attempt++) {
		if (attempt > 0) await new Promise((r) => setTimeout(r, retryDelayMs));
		const res = await fetch(url, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify(body),
			signal: AbortSignal.timeout(10_000),
		}).catch(() => null);
		await res?.arrayBuffer().catch(() => undefined);
		if (res?.ok) return true;
	}
	return false;
}
