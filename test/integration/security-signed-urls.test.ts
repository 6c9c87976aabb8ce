/**
 * Signed URLs, as the API hands them out, are good for exactly one object, method, type and length, and only
 * until they expire: upload URLs, share links and the URLs a job's backend gets. (The signer's own tampering
 * cases are in storage.test.ts and share.test.ts; these go through the real flows, across objects and accounts.)
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { jobVideoKey, objectKeys, submissionOf } from "../../src/storage";
import { WorkerUrlSigner } from "../../src/storage/worker-signer";
import { emulator } from "../emulators/pod/harness";
import { call, ORIGIN, PNG } from "../helpers/api";
import { stepUntil } from "../helpers/job-object";
import { startJob } from "../helpers/notify";
import { expectProblem, makeTenant, type Tenant } from "../helpers/security";

let a: Tenant;
let b: Tenant;
beforeAll(async () => {
	a = await makeTenant("signed-a", "pod-signed");
	b = await makeTenant("signed-b", "pod-signed");
});

interface Started {
	id: string;
	upload: { url: string; headers: Record<string, string> };
}

async function startUpload(t: Tenant, bytes: Uint8Array = PNG, contentType = "image/png"): Promise<Started> {
	const res = await call("/v1/uploads", {
		method: "POST",
		headers: t.auth,
		body: JSON.stringify({ filename: "x.png", content_type: contentType, size: bytes.byteLength }),
	});
	expect(res.status).toBe(201);
	return (await res.json()) as Started;
}

/** The same signed query on another object's path. */
function onPath(url: string, key: string): string {
	const u = new URL(url);
	return `${u.origin}/v1/storage/${key.split("/").map(encodeURIComponent).join("/")}${u.search}`;
}

const put = (url: string, headers: Record<string, string> = { "content-type": "image/png" }, body: Uint8Array = PNG) =>
	call(url, { method: "PUT", headers, body });

/** An upload with no bytes stored: `complete` still says so. */
async function expectNoBytes(t: Tenant, id: string): Promise<void> {
	await expectProblem(await call(`/v1/uploads/${id}/complete`, { method: "POST", headers: t.auth }), 409, "not_ready");
}

describe("upload URLs", () => {
	it("one upload's URL cannot store bytes at another upload's path, of the same or another account", async () => {
		const x = await startUpload(a);
		const ySame = await startUpload(a);
		const yOther = await startUpload(b);
		for (const [t, y] of [
			[a, ySame],
			[b, yOther],
		] as const) {
			const key = objectKeys.uploadKey(t.account, y.id);
			await expectProblem(await put(onPath(x.upload.url, key)), 403, "forbidden");
			await expectNoBytes(t, y.id);
		}
		// X's URL still works for X.
		expect((await put(x.upload.url, x.upload.headers)).status).toBe(200);
	});

	it.each<[string, (s: Started) => Promise<Response>, number, string]>([
		[
			"another Content-Type header",
			(s) => put(s.upload.url, { "content-type": "image/jpeg" }),
			415,
			"unsupported_media_type",
		],
		[
			"another signed type in the query",
			(s) => {
				const u = new URL(s.upload.url);
				u.searchParams.set("ct", "image/jpeg");
				return put(u.toString(), { "content-type": "image/jpeg" });
			},
			403,
			"forbidden",
		],
		["one byte fewer", (s) => put(s.upload.url, s.upload.headers, PNG.slice(1)), 400, "invalid_request"],
		[
			"a bigger signed size in the query",
			(s) => {
				const u = new URL(s.upload.url);
				u.searchParams.set("size", String(PNG.byteLength + 1000));
				return put(u.toString(), s.upload.headers, new Uint8Array(PNG.byteLength + 1000));
			},
			403,
			"forbidden",
		],
		["GET", (s) => call(s.upload.url), 403, "forbidden"],
		// POST under /v1/storage is only a job video's parts request, which a PUT grant's signature does not cover.
		["POST", (s) => call(s.upload.url, { method: "POST", headers: s.upload.headers, body: PNG }), 403, "forbidden"],
		[
			"the method rewritten to GET",
			(s) => {
				const u = new URL(s.upload.url);
				u.searchParams.set("method", "GET");
				return call(u.toString());
			},
			403,
			"forbidden",
		],
	])("refuses %s, storing nothing", async (_name, send, status, code) => {
		const s = await startUpload(a);
		await expectProblem(await send(s), status, code);
		await expectNoBytes(a, s.id);
	});

	it("refuses the upload's own URL once expired (403, says expired), storing nothing", async () => {
		const s = await startUpload(a);
		const expires = Number(new URL(s.upload.url).searchParams.get("expires"));
		// The URL the API would have issued for this very upload, an hour earlier.
		const past = new WorkerUrlSigner(env.SIGNING_SECRET, ORIGIN, () => (expires - 3600) * 1000 - 1000);
		const stale = await past.signPut(objectKeys.uploadKey(a.account, s.id), {
			contentType: "image/png",
			size: PNG.byteLength,
			expiresInS: 1,
		});
		const { detail } = await expectProblem(await put(stale.url), 403, "forbidden");
		expect(detail).toMatch(/expired/);
		await expectNoBytes(a, s.id);
	});
});

describe("share links", () => {
	it("a link for A's job does not play B's job or A's other job", async () => {
		expect((await call(a.shareUrl)).status).toBe(200);
		for (const other of [b.jobId, a.queuedJobId]) {
			await expectProblem(await call(a.shareUrl.replaceAll(a.jobId, other)), 403, "forbidden");
		}
		// Nor does B's link play A's job.
		await expectProblem(await call(b.shareUrl.replaceAll(b.jobId, a.jobId)), 403, "forbidden");
	});
});

describe("the URLs a job's backend gets", () => {
	/** Where a job's video lives: its succeeding submission's key. */
	const videoKeyOf = async (jobId: string) => {
		const job = await env.JOBS.getByName(jobId).get();
		if (!job) throw new Error(`no job ${jobId}`);
		return jobVideoKey(job);
	};
	const videoEtag = async (t: Tenant) => (await env.BUCKET.head(await videoKeyOf(t.jobId)))?.etag;

	it("A's output URL cannot write B's video, nor A's other job's", async () => {
		const before = await videoEtag(b);
		expect(before).toBeTruthy();
		const { url, headers } = a.backendUrls.output;
		for (const key of [await videoKeyOf(b.jobId), objectKeys.videoKey(a.account, a.queuedJobId)]) {
			await expectProblem(await put(onPath(url, key), headers, new Uint8Array(64)), 403, "forbidden");
		}
		expect(await videoEtag(b)).toBe(before);
		expect(await env.BUCKET.head(objectKeys.videoKey(a.account, a.queuedJobId))).toBeNull();
	});

	it("A's input URL cannot read B's upload or video", async () => {
		const input = a.backendUrls.inputs.image ?? "";
		expect((await call(input)).status).toBe(200);
		for (const key of [objectKeys.uploadKey(b.account, b.readyUpload), await videoKeyOf(b.jobId)]) {
			await expectProblem(await call(onPath(input, key)), 403, "forbidden");
		}
	});

	it("a submission the job gave up on cannot write its video, even with a valid output URL of its own", async () => {
		const current = await videoKeyOf(a.jobId);
		// What another submission (lost, timed out, failed over) was handed: a signed PUT for its own key.
		const earlier = objectKeys.videoKey(a.account, a.jobId, submissionOf(current) + 1);
		expect(earlier).not.toBe(current);
		const signer = new WorkerUrlSigner(env.SIGNING_SECRET, ORIGIN);
		const stale = await signer.signPut(earlier, { contentType: "video/mp4", maxSize: 1024, expiresInS: 600 });
		await expectProblem(await put(stale.url, stale.headers, new Uint8Array(64)), 409, "conflict");
		expect(await env.BUCKET.head(earlier)).toBeNull();
	});

	it("while the job runs, its output URL stores the video once and cannot replace it", async () => {
		const jobId = await startJob(a.auth, "pod-signed");
		const running = await stepUntil(jobId, (j) => j.status === "running");
		const info = (await (await emulator(`/_control/jobs/${running.remote_id}`)).json()) as {
			input: { output: { put: { url: string; headers: Record<string, string> } } };
		};
		const { url, headers } = info.input.output.put;
		const first = new Uint8Array(64).fill(1);
		expect((await put(url, headers, first)).status).toBe(200);
		// The same URL again (a duplicate run of the same submission, a replay): refused, the first bytes stay.
		const { detail } = await expectProblem(await put(url, headers, new Uint8Array(64).fill(2)), 409, "conflict");
		expect(detail).toContain("already stored");
		const stored = await env.BUCKET.get(await videoKeyOf(jobId));
		expect(new Uint8Array((await stored?.arrayBuffer()) ?? new ArrayBuffer(0))).toEqual(first);
		await call(`/v1/jobs/${jobId}/cancel`, { method: "POST", headers: a.auth });
	});

	it("the output URL cannot replace the video once the job has succeeded", async () => {
		const before = await videoEtag(a);
		const { url, headers } = a.backendUrls.output;
		await expectProblem(await put(url, headers, new Uint8Array(64)), 409, "conflict");
		expect(await videoEtag(a)).toBe(before);
		const video = await call(`/v1/jobs/${a.jobId}/video`, { headers: a.auth });
		expect(video.status).toBe(200);
		expect(video.headers.get("etag")).toContain(before ?? "");
		await video.arrayBuffer();
	});
});
