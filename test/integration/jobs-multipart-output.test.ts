import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { OUTPUT_PART_BYTES } from "../../src/storage/output";
import { emulator, prompt, putPodBackend, relayTransfers } from "../emulators/pod/harness";
import { call, newAccount, PNG, upload } from "../helpers/api";
import { record, stepUntil } from "../helpers/job-object";
import { sha256Hex } from "../helpers/media";
import { expectProblem } from "../helpers/security";

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

type RemoteOutput = {
	put: { url: string; headers: Record<string, string>; max_size: number };
	parts_url?: { url: string; headers: Record<string, string> };
	multipart?: unknown;
};

async function remoteOutput(remoteId: string): Promise<RemoteOutput> {
	return ((await (await emulator(`/_control/jobs/${remoteId}`)).json()) as { input: { output: RemoteOutput } }).input
		.output;
}

const uploadIdOf = (job: unknown) => (job as { output_upload_id?: string | null }).output_upload_id ?? null;

/** Asks the output's `parts_url` for part URLs, as a worker would. */
function askParts(output: RemoteOutput, body: unknown): Promise<Response> {
	const target = output.parts_url;
	if (!target) throw new Error("no parts_url");
	return call(target.url, { method: "POST", headers: target.headers, body: JSON.stringify(body) });
}

describe("the GPU output target", () => {
	it("offers one PUT and opens a multipart upload only when the worker asks for parts", async () => {
		const { auth, id, remoteId } = await runningJob("mp-ok", "pod-mp-ok", prompt(`multipart=${5 * MiB}`));
		const output = await remoteOutput(remoteId);
		// MAX_VIDEO_BYTES (2 GiB) exceeds what a Worker-signed PUT may carry: a parts request is offered, no parts.
		expect(output.put).toMatchObject({ url: expect.stringMatching(/^http:\/\/reelgate\.test\//) });
		expect(output.put.max_size).toBe(OUTPUT_PART_BYTES);
		expect(output.parts_url?.url).toMatch(/method=POST/);
		expect(output).not.toHaveProperty("multipart");
		// Submitting the job opened nothing in R2.
		expect(uploadIdOf(await record(id))).toBeNull();

		const relayed = await relayTransfers(remoteId);
		expect(relayed.upload).toBe(200);
		expect(uploadIdOf(await record(id))).toEqual(expect.any(String));
		const video = new Uint8Array(await (await emulator(`/_control/jobs/${remoteId}/video`)).arrayBuffer());
		expect(video.byteLength).toBe(6 * MiB);
		const done = await stepUntil(id, (j) => j.status === "succeeded" || j.status === "failed");
		expect(done.error).toBeNull();
		expect(done.status).toBe("succeeded");
		expect(done.output?.video).toMatchObject({ size: video.byteLength, sha256: await sha256Hex(video) });
		expect(done.output?.video).not.toHaveProperty("parts");
		const served = await call(`/v1/jobs/${id}/video`, { headers: auth });
		expect(await sha256Hex(new Uint8Array(await served.arrayBuffer()))).toBe(await sha256Hex(video));
		// Once the job is finished, no part URLs are handed out.
		await expectProblem(await askParts(output, { size: 6 * MiB, part_size: 5 * MiB }), 409, "conflict");
	});

	it("answers the same multipart upload on a repeat, exact part sizes, and refuses bad sizes naming the field", async () => {
		const { id, remoteId } = await runningJob("mp-ask", "pod-mp-ask", prompt());
		const output = await remoteOutput(remoteId);
		const size = 11 * MiB + 3;
		const first = await askParts(output, { size, part_size: 5 * MiB });
		expect(first.status).toBe(200);
		const plan = (await first.json()) as { part_size: number; parts: { part_number: number; url: string }[] };
		expect(plan.part_size).toBe(5 * MiB);
		expect(plan.parts.map((p) => new URL(p.url).searchParams.get("size"))).toEqual([
			String(5 * MiB),
			String(5 * MiB),
			String(MiB + 3),
		]);
		const again = (await (await askParts(output, { size })).json()) as { part_size: number; parts: { url: string }[] };
		expect(again.part_size).toBe(OUTPUT_PART_BYTES);
		const uploadOf = (url: string | undefined) => new URL(url ?? "http://x").searchParams.get("upload_id");
		expect(uploadOf(again.parts[0]?.url)).toBe(uploadOf(plan.parts[0]?.url));
		expect(uploadIdOf(await record(id))).toBe(uploadOf(plan.parts[0]?.url));

		const bad = await expectProblem(await askParts(output, { size: -1 }), 400, "invalid_request");
		expect(bad.detail).toMatch(/size/);
		const small = await expectProblem(await askParts(output, { size, part_size: MiB }), 400, "invalid_request");
		expect(JSON.parse(small.text).errors).toEqual([expect.objectContaining({ path: "json.part_size" })]);
		const huge = await expectProblem(await askParts(output, { size: 3 * 1024 * MiB }), 413, "payload_too_large");
		expect(JSON.parse(huge.text).errors).toEqual([expect.objectContaining({ path: "json.size" })]);
		// The PUT's signature does not grant the parts request.
		const asPut = new URL(output.put.url);
		await expectProblem(
			await call(asPut.toString(), { method: "POST", body: JSON.stringify({ size }) }),
			403,
			"forbidden",
		);
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

	it("opens no multipart upload when the worker uses the single PUT", async () => {
		const { id, remoteId } = await runningJob("mp-put", "pod-mp-put", prompt());
		expect(uploadIdOf(await record(id))).toBeNull();
		await relayTransfers(remoteId);
		const done = await stepUntil(id, (j) => j.status === "succeeded");
		expect(uploadIdOf(done)).toBeNull();
	});
});
