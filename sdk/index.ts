export {
	type FinishedJob,
	type ListJobsOptions,
	Reelgate,
	type ReelgateOptions,
	type RunInput,
	type RunOptions,
	type RunProgress,
	type UploadFileOptions,
	type VideoRange,
	type WaitForJobOptions,
} from "./client.ts";
export { JobFailedError, ReelgateConnectionError, ReelgateError } from "./errors.ts";
export { CONTENT_TYPES, type FileInput, type NamedData, type RunFile } from "./files.ts";
export { parseRetryAfter, retryDelayMs } from "./retry.ts";
export { readSse, type SseMessage, SseParser } from "./sse.ts";
export * from "./types.ts";
export type { UploadData } from "./upload-body.ts";
export { signWebhook, type VerifyWebhookOptions, verifyWebhook, WebhookVerificationError } from "./webhooks.ts";
