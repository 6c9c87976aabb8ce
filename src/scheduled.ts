import { deleteStaleReservations } from "./db/job-slots";
import { expirePendingUploads } from "./db/uploads";
import { createLogger } from "./lib/logger";
import { runKeepWarm } from "./ops/keep-warm";
import { sweepLateWrites } from "./storage/settle";

/** Periodic housekeeping (cron): expired uploads, late writes to settled ones, and idempotency records. */
export async function runScheduled(env: Env, scheduledTime: number): Promise<void> {
	const now = new Date(scheduledTime).toISOString();
	await env.DB.prepare("DELETE FROM idempotency_keys WHERE expires_at < ?").bind(now).run();
	await expirePendingUploads(env, now);
	await sweepLateWrites(env, now);
	// Concurrent-job reservations of requests that died before creating their job (they stopped counting already).
	await deleteStaleReservations(env.DB, new Date(scheduledTime - 3_600_000).toISOString());
	// Keep-warm pings (off unless KEEP_WARM_BACKENDS is set); its failures are logged, never thrown.
	await runKeepWarm(env, scheduledTime, createLogger({ component: "keep_warm" }));
}
