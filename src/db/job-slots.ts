import { first, run } from "./sql";

/**
 * Concurrent-job slots, counted in the D1 job index. The route reserves a slot by writing the job's index row
 * itself, in one conditional INSERT that counts the account's queued and running jobs: D1 runs statements one at
 * a time, so two racing creations cannot both take the last slot. The JobDO then fills the row in (its first
 * index sync), and the job's end (succeeded, failed, canceled) frees the slot.
 *
 * A reserved row has no `snapshot` until its JobDO confirms it. A request that died between the reservation and
 * the object's creation leaves such a row behind: it stops counting after `RESERVATION_TTL_MS`, and the cron
 * deletes it, so no slot can leak.
 */
export const RESERVATION_TTL_MS = 60_000;

/** Rows holding a slot of account `?` (a confirmed active job, or a reservation newer than `?`). */
const HOLDS_SLOT = `account_id = ? AND status IN ('queued', 'running') AND (snapshot IS NOT NULL OR created_at >= ?)`;

const cutoff = (nowMs: number) => new Date(nowMs - RESERVATION_TTL_MS).toISOString();

export interface SlotRequest {
	jobId: string;
	accountId: string;
	model: string;
	/** The job's `created_at`, which the JobDO will keep. */
	createdAt: string;
}

/** Reserves a slot for the job unless the account already holds `max`. True when reserved. */
export async function reserveJobSlot(db: D1Database, slot: SlotRequest, max: number, nowMs: number): Promise<boolean> {
	const result = await run(
		db,
		`INSERT INTO jobs (id, account_id, status, model, attempts, created_at, updated_at)
		 SELECT ?, ?, 'queued', ?, 0, ?, ?
		  WHERE (SELECT COUNT(*) FROM jobs WHERE ${HOLDS_SLOT}) < ?`,
		slot.jobId,
		slot.accountId,
		slot.model,
		slot.createdAt,
		slot.createdAt,
		slot.accountId,
		cutoff(nowMs),
		max,
	);
	return result.meta.changes > 0;
}

/** Gives back a reservation whose job was not created (a confirmed job's row is left alone). */
export async function releaseJobSlot(db: D1Database, jobId: string): Promise<void> {
	await run(db, "DELETE FROM jobs WHERE id = ? AND snapshot IS NULL", jobId);
}

/** How many slots the account holds now. */
export async function activeJobCount(db: D1Database, accountId: string, nowMs: number): Promise<number> {
	const row = await first<{ n: number }>(
		db,
		`SELECT COUNT(*) AS n FROM jobs WHERE ${HOLDS_SLOT}`,
		accountId,
		cutoff(nowMs),
	);
	return row?.n ?? 0;
}

/**
 * Deletes reservations never confirmed by a JobDO (cron). Generous margin: if the object does exist after all, its
 * next alarm step writes the row again.
 */
export async function deleteStaleReservations(db: D1Database, before: string): Promise<void> {
	await run(db, "DELETE FROM jobs WHERE snapshot IS NULL AND status = 'queued' AND created_at < ?", before);
}
