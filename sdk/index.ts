export {
	type ListJobsOptions,
	Reelgate,
	type ReelgateOptions,
	type UploadFileOptions,
	type VideoRange,
	type WaitForJobOptions,
} from "./client.ts";
export { ReelgateError } from "./errors.ts";
export { parseRetryAfter, retryDelayMs } from "./retry.ts";
export { readSse, type SseMessage, SseParser } from "./sse.ts";
export * from "./types.ts";
export type { UploadData } from "./upload-body.ts";
export { signWebhook, type VerifyWebhookOptions, verifyWebhook, WebhookVerificationError } from "./webhooks.ts";
