import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { OUTPUT_PART_BYTES } from "../../src/storage/output";
import { emulator, prompt, putPodBackend, relayTransfers } from "../emulators/pod/harness";
import { call, newAccount, PNG, upload } from "../helpers/api";
import { stepUntil } from "../helpers/job-object";
import { sha256Hex } from "../helpers/media";

const MiB = 1024 * 1024;

/** Creates a preview job on `backend` with `text` as prompt; runs it until its transfers are due. */
async function runningJob(account: string, backend: string, text: string) {
	expect((await putPodBackend(backend)).status).toBe(200);
	const auth = await newAccount(account);
	const image = await upload(auth, PNG, "image/png", "fox.png");
	const created = await call("/v1/jobs", {
		method: "POST",
		headers: auth,
		body: JSON.stringify({ model: "preview", input: { image, prompt: text }, backend }),
	});
	expect(created.status).toBe(202);
	const { id } = (await created.json()) as { id: string };
	const running = await stepUntil(id, (j) => j.status === "running");
	return { auth, id, remoteId: running.remote_id ?? "" };
}

describe("the GPU output target", () => {
	it("offers part URLs besides the PUT, and completes a video written through them", async () => {
		const { auth, id, remoteId } = await runningJob("mp-ok", "pod-mp-ok", prompt(`multipart=${5 * MiB}`));
		const remote = (await (await emulator(`/_control/jobs/${remoteId}`)).json()) as {
			input: { output: { put: unknown; multipart: { part_size: number; parts: { part_number: number }[] } } };
		};
		// MAX_VIDEO_BYTES (2 GiB) exceeds one part: both the PUT and the parts are offered.
		expect(remote.input.output.put).toMatchObject({ url: expect.stringMatching(/^http:\/\/reelgate\.test\//) });
		expect(remote.input.output.multipart.part_size).toBe(OUTPUT_PART_BYTES);
		expect(remote.input.output.multipart.parts).toHaveLength((2 * 1024 * MiB) / OUTPUT_PART_BYTES);

		const relayed = await relayTransfers(remoteId);
		expect(relayed.upload).toBe(200);
		const video = new Uint8Array(await (await emulator(`/_control/jobs/${remoteId}/video`)).arrayBuffer());
		expect(video.byteLength).toBe(6 * MiB);
		const done = await stepUntil(id, (j) => j.status === "succeeded" || j.status === "failed");
		expect(done.error).toBeNull();
		expect(done.status).toBe("succeeded");
		expect(done.output?.video).toMatchObject({ size: video.byteLength, sha256: await sha256Hex(video) });
		expect(done.output?.video).not.toHaveProperty("parts");
		const served = await call(`/v1/jobs/${id}/video`, { headers: auth });
		expect(await sha256Hex(new Uint8Array(await served.arrayBuffer()))).toBe(await sha256Hex(video));
	});

	it("fails the job with output_verification_failed when a reported part was never uploaded", async () => {
		const { id, remoteId } = await runningJob("mp-lost", "pod-mp-lost", prompt(`multipart=${5 * MiB}`, "lostpart=2"));
		await relayTransfers(remoteId);
		const done = await stepUntil(id, (j) => j.status === "failed" || j.status === "succeeded");
		expect(done.status).toBe("failed");
		expect(done.error?.code).toBe("output_verification_failed");
		expect(done.error?.message).toMatch(/parts/);
		// Nothing of the job's video is left: not the refused assembly, nor any submission's object.
		const left = await env.BUCKET.list({ prefix: `outputs/${done.spec.account_id}/${id}/` });
		expect(left.objects).toEqual([]);
	});

	it("aborts the unused multipart upload when the worker used the single PUT", async () => {
		const { id, remoteId } = await runningJob("mp-put", "pod-mp-put", prompt());
		await relayTransfers(remoteId);
		const done = await stepUntil(id, (j) => j.status === "succeeded");
		expect((done as { output_upload_id?: string | null }).output_upload_id).toBeNull();
	});
});
