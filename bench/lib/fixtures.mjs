// What the API benchmarks need before they measure: an account with a key, an image uploaded through the real
// upload flow, and the project's TypeScript emulators of the GPU backends (test/emulators), loaded in plain Node.
import "./typescript-imports.mjs";

const { pngBytes } = await import("../../test/helpers/media.ts");
export const { startPodEmulator } = await import("../../test/emulators/pod/server.ts");
export const { startRunpodEmulator } = await import("../../test/emulators/runpod/server.ts");

/** A key (`key`, `account`) and a ready image upload (`imageId`) on `stack`. */
export async function prepareAccount(stack, name = "bench") {
	const created = await stack.createKey(name);
	const imageId = await stack.upload(created.key, "still.png", "image/png", pngBytes(64, 64));
	return { key: created.key, account: created.account, imageId };
}

/**
 * Registers the pod emulator `pod` as the backend "bench-pod" for `preview`; `config` adds to the backend's config
 * (a longer `timeout_ms`). With the emulator in relay mode (its default) a submitted job waits for transfers nobody
 * makes: it stays `running`, and its Durable Object only wakes for an occasional poll.
 */
export function putBenchPod(stack, pod, config = {}) {
	return stack.putBackend("bench-pod", {
		kind: "pod",
		models: ["preview"],
		config: { url: pod.url, token: pod.token, ...config },
	});
}

/** POST /v1/jobs for the `preview` model on `backend`; returns the job (202). */
export function createJob(stack, account, backend, prompt = "bench") {
	return stack.expect(202, "POST", "/v1/jobs", {
		token: account.key,
		body: { model: "preview", input: { image: account.imageId, prompt }, backend },
	});
}

/** Polls GET /v1/jobs/{id} until `done(job)` holds, every `everyMs`; gives up after `timeoutMs`. */
export async function waitForJob(stack, account, id, done, { everyMs = 200, timeoutMs = 120_000 } = {}) {
	const deadline = performance.now() + timeoutMs;
	for (;;) {
		const job = await stack.expect(200, "GET", `/v1/jobs/${id}`, { token: account.key });
		if (done(job)) return job;
		if (["failed", "canceled"].includes(job.status))
			throw new Error(`job ${id} ${job.status}: ${JSON.stringify(job.error)}`);
		if (performance.now() > deadline) throw new Error(`job ${id} still ${job.status} after ${timeoutMs} ms`);
		await new Promise((r) => setTimeout(r, everyMs));
	}
}
