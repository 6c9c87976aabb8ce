/**
 * The job's video in R2: where each submission writes it, the multipart upload a worker may write it through,
 * the check of what was stored before the job may succeed, and the sweep of videos nobody will serve.
 */
import type { GpuJobInput } from "../../src/backends/types";
import { isTerminal, type VideoOutput } from "../../src/jobs/state";
import { verifyVideo } from "../../src/jobs/verify";
import type { Logger } from "../../src/lib/logger";
import { jobVideoKey, objectKeys, submissionOf } from "../../src/storage";
import { abortOutputMultipart, completeOutputMultipart } from "../../src/storage/output";
import type { Verdict } from "./decide";
import { buildJobInput } from "./input";
import type { JobStore, StoredJob } from "./store";

export class JobOutput {
	readonly #env: Env;
	readonly #store: JobStore;
	readonly #log: () => Logger;

	constructor(env: Env, store: JobStore, log: () => Logger) {
		this.#env = env;
		this.#store = store;
		this.#log = log;
	}

	/** A multipart upload being opened by `openParts`, so concurrent requests for it share one. */
	#opening: Promise<string> | null = null;

	/**
	 * The next submission's input, with its own output target. A multipart upload the previous submission opened
	 * is aborted, not reused: a worker of the earlier attempt may still be running (a lost job, a failover after a
	 * timeout) and could overwrite parts the new attempt reports; after the abort its part PUTs are refused. The
	 * video goes to a key of its own, so a run given up on cannot overwrite what this one writes.
	 */
	async nextSubmission(job: StoredJob): Promise<{ input: GpuJobInput; videoKey: string }> {
		await this.abortUpload();
		const videoKey = objectKeys.videoKey(job.spec.account_id, job.spec.id, submissionOf(job.output_key) + 1);
		this.#store.setOutputKey(videoKey);
		return { input: await buildJobInput(this.#env, job.spec, videoKey), videoKey };
	}

	/**
	 * The multipart upload a worker writes `key` through, opened on its first request for part URLs (a video
	 * larger than its single PUT) and the same one on a repeat. Null when `key` is not the current submission's
	 * video or the job is finished: only that run may write, as with the PUT (src/storage/output-guard.ts).
	 */
	async openParts(key: string): Promise<string | null> {
		const writable = (job: StoredJob | null): job is StoredJob =>
			job !== null && !isTerminal(job.status) && jobVideoKey(job) === key;
		const job = this.#store.load();
		if (!writable(job)) return null;
		if (job.output_upload_id) return job.output_upload_id;
		this.#opening ??= this.#env.BUCKET.createMultipartUpload(key, { httpMetadata: { contentType: "video/mp4" } })
			.then((upload) => upload.uploadId)
			.finally(() => {
				this.#opening = null;
			});
		const uploadId = await this.#opening;
		// The job may have moved on while R2 answered: then the upload is freed, not recorded.
		if (!writable(this.#store.load())) {
			await abortOutputMultipart(this.#env, key, uploadId);
			return null;
		}
		this.#store.setOutputUpload(uploadId);
		return uploadId;
	}

	/**
	 * Checks the video the worker reports before the job may succeed. A worker that wrote through the part URLs
	 * reports `parts`: the multipart upload is completed with them first.
	 */
	async verify(job: StoredJob, reported: VideoOutput): Promise<Verdict> {
		const { parts, ...video } = reported;
		const key = jobVideoKey(job);
		const refused = parts ? await this.#completeParts(key, parts) : null;
		if (refused) return { ok: false, message: refused };
		return verifyVideo(this.#env.BUCKET, key, video);
	}

	/** Best effort: aborts the job's open output multipart upload (the worker used `put`, failed, or is replaced). */
	async abortUpload(): Promise<void> {
		const job = this.#store.load();
		const uploadId = job?.output_upload_id;
		if (!job || !uploadId) return;
		// Forgotten first (synchronously), so a concurrent caller does not abort it twice.
		this.#store.setOutputUpload(null);
		await abortOutputMultipart(this.#env, jobVideoKey(job), uploadId);
	}

	/**
	 * Best effort: deletes the videos of submissions other than the one that succeeded (all of them when the job
	 * did not succeed): runs given up on may have written theirs, and nothing serves them. Submissions are
	 * numbered, so their keys are known without listing the bucket: a job that succeeded on its first costs nothing.
	 */
	async sweep(job: StoredJob): Promise<void> {
		const last = submissionOf(job.output_key);
		const keep = job.status === "succeeded" ? last : 0;
		const stale: string[] = [];
		for (let n = 1; n <= last; n++) {
			if (n !== keep) stale.push(objectKeys.videoKey(job.spec.account_id, job.spec.id, n));
		}
		try {
			// R2 deletes at most 1000 keys per call.
			for (let i = 0; i < stale.length; i += 1000) await this.#env.BUCKET.delete(stale.slice(i, i + 1000));
		} catch (err) {
			this.#log().warn("output_sweep_failed", { error: err instanceof Error ? err.message : String(err) });
		}
	}

	/**
	 * Completes the output multipart upload with the worker's reported parts; the refusal's message, or null.
	 * With none open (never opened, or completed by a step that stopped before saving), verification decides.
	 */
	async #completeParts(key: string, parts: { part_number: number; etag: string }[]): Promise<string | null> {
		const uploadId = this.#store.load()?.output_upload_id;
		if (!uploadId) return null;
		const done = await completeOutputMultipart(this.#env, key, uploadId, parts);
		if (!done.ok) {
			return `The video parts the backend reported could not be assembled (${done.reason}): ${done.message}`;
		}
		this.#store.setOutputUpload(null);
		return null;
	}
}
