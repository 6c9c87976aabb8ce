import { expirePendingUploads } from "./db/uploads";

/** Periodic housekeeping (cron): expired uploads and idempotency records. */
export async function runScheduled(env: Env, scheduledTime: number): Promise<void> {
	const now = new Date(scheduledTime).toISOString();
	await env.DB.prepare("DELETE FROM idempotency_keys WHERE expires_at < ?").bind(now).run();
	await expirePendingUploads(env, now);
}
