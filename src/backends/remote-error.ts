/**
 * A FAILED job's `error`, as a RunPod endpoint or the GPU worker in pod mode sends it. RunPod declares `error` a
 * string, so the GPU worker sends its `{code, message}` as JSON text; older workers sent the object itself; an
 * exception a runpod-python handler did not catch arrives as JSON text of `{error_type, error_message,
 * error_traceback, hostname, …}` (runpod-python `serverless/modules/rp_job.py`), whose traceback and hostname stay
 * out of the job; any other handler's error is a plain message.
 */
export interface RemoteError {
	code: string;
	message: string;
}

import { isObject } from "./http";

const MAX_MESSAGE = 500;
const FALLBACK_CODE = "inference_failed";

/** A URL's query (signatures, tokens) and an absolute file path, quoted or not (a worker's temporary files). */
const URL_QUERY = /(\bhttps?:\/\/[^\s'"<>?#]+)[?#][^\s'"<>]*/g;
const QUOTED_PATH = /\s?(['"])\/(?:[^\s/'"<>:]+\/)+[^\s/'"<>:]+\1/g;
const BARE_PATH = /(?<![\w:/.~-])\/(?:[^\s/'"<>:]+\/)+[^\s/'"<>:,;)]+/g;

/**
 * What of a remote message a client may read: no signed query and no path on the machine that ran the job. The
 * GPU worker cleans its messages itself (gpu_worker/log.py); this holds for any other worker a backend runs.
 */
export function publicMessage(text: string): string {
	const cut = text.replace(URL_QUERY, "$1").replace(QUOTED_PATH, "").replace(BARE_PATH, "");
	return cut
		.replace(/[ \t]{2,}/g, " ")
		.trim()
		.slice(0, MAX_MESSAGE);
}

function fromObject(error: Record<string, unknown>): RemoteError | undefined {
	if (typeof error.code === "string" && error.code) {
		const message = typeof error.message === "string" ? error.message : "The GPU job failed.";
		return { code: error.code, message: publicMessage(message) };
	}
	if (typeof error.error_message === "string") {
		return { code: FALLBACK_CODE, message: publicMessage(error.error_message) };
	}
	return undefined;
}

/** The code and message of a remote failure, in any of the forms above. */
export function parseRemoteError(error: unknown): RemoteError {
	if (isObject(error)) {
		return fromObject(error) ?? { code: FALLBACK_CODE, message: "The GPU job failed." };
	}
	if (typeof error === "string" && error.trim()) {
		try {
			const parsed: unknown = JSON.parse(error);
			const known = isObject(parsed) ? fromObject(parsed) : undefined;
			if (known) return known;
		} catch {
			// A plain message, not JSON.
		}
		return { code: FALLBACK_CODE, message: publicMessage(error) };
	}
	return { code: FALLBACK_CODE, message: "The GPU job failed without an error message." };
}
