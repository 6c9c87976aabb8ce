import { describe, expect, it } from "vitest";
import { emulator, prompt, putPodBackend, relayTransfers } from "../emulators/pod/harness";
import { call, newAccount, PNG, upload, wav } from "../helpers/api";
import { record, stepUntil } from "../helpers/job-object";

describe("a job, end to end on the pod emulator", () => {
	it("runs queued → running → succeeded and serves the video whole and by range", async () => {
		expect((await putPodBackend("pod-main")).status).toBe(200);
		const auth = await newAccount("flow");
		const image = await upload(auth, PNG, "image/png", "fox.png");
		const created = await call("/v1/jobs", {
			method: "POST",
			headers: auth,
			body: JSON.stringify({ model: "preview", input: { image, prompt: prompt() } }),
		});
		expect(created.status).toBe(202);
		const job = (await created.json()) as { id: string; status: string; links: { self: string; video: string } };
		expect(job.status).toBe("queued");
		expect(job.links.self).toBe(`http://reelgate.test/v1/jobs/${job.id}`);

		const running = await stepUntil(job.id, (j) => j.status === "running");
		expect(running.attempts).toBe(1);
		expect(running.progress.stage).toBe("downloading");
		const relayed = await relayTransfers(running.remote_id ?? "");
		expect(relayed).toEqual({ downloads: { image: 200 }, upload: expect.any(Number) });
		expect(relayed.upload).toBeLessThan(300);

		const sampling = await stepUntil(job.id, (j) => j.progress.stage === "sampling");
		expect(sampling.progress.percent).toBe(60);
		const done = await stepUntil(job.id, (j) => j.status === "succeeded");
		expect(done.cost?.gpu_seconds).toBe(5.4);

		const view = (await (await call(`/v1/jobs/${job.id}`, { headers: auth })).json()) as Record<string, unknown>;
		expect(view).toMatchObject({
			status: "succeeded",
			progress: { percent: 100 },
			backend: { name: "pod-main", kind: "pod" },
			attempts: 1,
			cost: { gpu_seconds: 5.4, usd: 0.0027 },
			output: { video: { url: job.links.video, content_type: "video/mp4" } },
		});
		const size = (view.output as { video: { size: number } }).video.size;

		const whole = await call(`/v1/jobs/${job.id}/video`, { headers: auth });
		expect(whole.status).toBe(200);
		expect(whole.headers.get("content-type")).toBe("video/mp4");
		expect((await whole.arrayBuffer()).byteLength).toBe(size);
		const part = await call(`/v1/jobs/${job.id}/video`, { headers: { ...auth, range: "bytes=0-99" } });
		expect(part.status).toBe(206);
		expect((await part.arrayBuffer()).byteLength).toBe(100);
		const latest = await record(job.id);
		expect(latest.status).toBe("succeeded");
	});
});

describe("the GPU job input", () => {
	it("follows docs/gpu-job-protocol.md: signed URLs on PUBLIC_URL, params with model defaults", async () => {
		expect((await putPodBackend("pod-input")).status).toBe(200);
		const auth = await newAccount("input");
		const image = await upload(auth, PNG, "image/png", "face.png");
		const audio = await upload(auth, wav(), "audio/wav", "voice.wav");
		const text = prompt();
		const res = await call("/v1/jobs", {
			method: "POST",
			headers: auth,
			body: JSON.stringify({
				model: "wan2.2-s2v",
				input: { image, audio, prompt: text, seed: 42 },
				backend: "pod-input",
			}),
		});
		expect(res.status).toBe(202);
		const { id } = (await res.json()) as { id: string };
		const running = await stepUntil(id, (j) => j.status === "running");
		const remote = (await (await emulator(`/_control/jobs/${running.remote_id}`)).json()) as {
			input: Record<string, unknown>;
		};
		expect(remote.input).toMatchObject({
			model: "wan2.2-s2v",
			inputs: {
				image: { url: expect.stringMatching(/^http:\/\/reelgate\.test\/v1\/storage\//), content_type: "image/png" },
				audio: { url: expect.stringMatching(/^http:\/\/reelgate\.test\/v1\/storage\//), content_type: "audio/wav" },
			},
			params: { width: 640, height: 640, fps: 16, seed: 42, prompt: text },
			output: {
				content_type: "video/mp4",
				put: { url: expect.stringMatching(/^http:\/\/reelgate\.test\/v1\/storage\//), headers: expect.any(Object) },
			},
		});
		// No duration given and audio present: the worker takes the audio's length.
		expect((remote.input.params as Record<string, unknown>).duration_s).toBeUndefined();
		const relayed = await relayTransfers(running.remote_id ?? "");
		expect(relayed.downloads).toEqual({ image: 200, audio: 200 });
		const done = await stepUntil(id, (j) => j.status === "succeeded");
		expect(done.output?.video).toMatchObject({ width: 640, height: 640, fps: 16, content_type: "video/mp4" });
	});

	it("is documented in /openapi.json", async () => {
		const doc = (await (await call("/openapi.json")).json()) as { paths: Record<string, unknown> };
		expect(Object.keys(doc.paths)).toEqual(
			expect.arrayContaining([
				"/v1/jobs",
				"/v1/jobs/{id}",
				"/v1/jobs/{id}/cancel",
				"/v1/jobs/{id}/video",
				"/v1/admin/backends",
				"/v1/admin/backends/{name}",
				"/v1/admin/backends/{name}/test",
			]),
		);
	});
});
