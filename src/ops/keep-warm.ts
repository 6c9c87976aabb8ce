import { type StoredConfig, storedConfig } from "../backends/config";
import { RUNPOD_BASE_URL } from "../backends/runpod";
import { configOf } from "../config";
import { getBackend } from "../db/backends";
import { all, run } from "../db/sql";
import type { Logger } from "../lib/logger";
import { openJson } from "../lib/secret-box";
import { isWithinHours } from "./schedule";

/** A ping still unanswered after this long is marked `lost` (the backend dropped it or never ran it). */
const LOST_AFTER_MS = 60 * 60_000;
/** Per-call limit: the cron must finish well within its own time budget. */
const CALL_TIMEOUT_MS = 10_000;

/** Where and how to reach a backend's RunPod-style queue API (`/run`, `/status/{id}`). */
interface QueueTarget {
	kind: string;
	base: string;
	headers: Record<string, string>;
}

export interface KeepWarmOutcome {
	/** Whether `scheduledTime` fell inside the configured hours. */
	inWindow: boolean;
	sent: { backend: string; ok: boolean; remote_id?: string; error?: string }[];
	/** Earlier pings whose result came in during this run. */
	settled: { id: string; status: string; delay_ms: number | null }[];
}

interface PingRow {
	id: string;
	backend_name: string;
	remote_id: string | null;
	sent_at: string;
}

/**
 * The queue API of a backend, for the kinds that have one: `runpod` (RunPod Serverless) and `pod` (the GPU
 * worker in pod mode speaks the same API). Built from the stored config directly: a health check is not a job,
 * so it needs none of the adapter's job plumbing. Null for other kinds.
 */
async function queueTarget(env: Env, name: string): Promise<QueueTarget | { error: string }> {
	const row = await getBackend(env.DB, name);
	if (!row) return { error: "no such backend" };
	if (!row.enabled) return { error: "backend disabled" };
	let stored: StoredConfig;
	try {
		stored = storedConfig(row, await openJson(env.BACKEND_SECRETS_KEY, row.secrets));
	} catch {
		return { error: "backend config or secrets unreadable" };
	}
	const headers: Record<string, string> = { "content-type": "application/json" };
	switch (stored.kind) {
		case "runpod": {
			const { base_url = RUNPOD_BASE_URL, endpoint_id, api_key } = stored.config;
			if (api_key) headers.authorization = `Bearer ${api_key}`;
			return { kind: row.kind, base: `${base_url.replace(/\/+$/, "")}/${encodeURIComponent(endpoint_id)}`, headers };
		}
		case "pod":
			if (stored.config.token) headers.authorization = `Bearer ${stored.config.token}`;
			return { kind: row.kind, base: stored.config.url.replace(/\/+$/, ""), headers };
		default:
			return { error: `kind ${row.kind} has no queue API to keep warm` };
	}
}

async function call(target: QueueTarget, method: string, path: string, body?: unknown): Promise<Response> {
	return fetch(`${target.base}${path}`, {
		method,
		headers: target.headers,
		body: body === undefined ? undefined : JSON.stringify(body),
		signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
	});
}

const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? Math.round(v) : null);

/** Sends one `health_check` job; the result is collected by a later run (a cold start can take minutes). */
async function sendPing(env: Env, name: string, now: string): Promise<KeepWarmOutcome["sent"][number]> {
	const target = await queueTarget(env, name);
	if ("error" in target) return { backend: name, ok: false, error: target.error };
	const kind = target.kind;
	const id = `kw_${crypto.randomUUID()}`;
	try {
		const res = await call(target, "POST", "/run", { input: { health_check: true } });
		const body = (await res.json().catch(() => ({}))) as { id?: unknown };
		if (!res.ok || typeof body.id !== "string") throw new Error(`HTTP ${res.status} from /run`);
		await run(
			env.DB,
			"INSERT INTO keep_warm_pings (id, backend_name, backend_kind, remote_id, status, sent_at) VALUES (?, ?, ?, ?, 'sent', ?)",
			id,
			name,
			kind,
			body.id,
			now,
		);
		return { backend: name, ok: true, remote_id: body.id };
	} catch (err) {
		const error = err instanceof Error ? err.message : String(err);
		await run(
			env.DB,
			"INSERT INTO keep_warm_pings (id, backend_name, backend_kind, status, error, sent_at, completed_at) VALUES (?, ?, ?, 'failed', ?, ?, ?)",
			id,
			name,
			kind,
			error.slice(0, 500),
			now,
			now,
		);
		return { backend: name, ok: false, error };
	}
}

/** Collects the results of earlier pings: `delayTime` (the cold start) and `executionTime`. */
async function settlePings(env: Env, nowMs: number): Promise<KeepWarmOutcome["settled"]> {
	const pending = await all<PingRow>(
		env.DB,
		"SELECT id, backend_name, remote_id, sent_at FROM keep_warm_pings WHERE status = 'sent' ORDER BY sent_at LIMIT 50",
	);
	const settled: KeepWarmOutcome["settled"] = [];
	const now = new Date(nowMs).toISOString();
	const targets = new Map<string, QueueTarget | { error: string }>();
	for (const ping of pending) {
		if (!targets.has(ping.backend_name)) targets.set(ping.backend_name, await queueTarget(env, ping.backend_name));
		const target = targets.get(ping.backend_name);
		let status: string | null = null;
		let delay: number | null = null;
		let exec: number | null = null;
		if (target && !("error" in target) && ping.remote_id) {
			try {
				const res = await call(target, "GET", `/status/${encodeURIComponent(ping.remote_id)}`);
				if (res.status === 404) status = "lost";
				else if (res.ok) {
					const body = (await res.json()) as { status?: unknown; delayTime?: unknown; executionTime?: unknown };
					delay = num(body.delayTime);
					exec = num(body.executionTime);
					if (body.status === "COMPLETED") status = "completed";
					else if (body.status === "FAILED" || body.status === "CANCELLED" || body.status === "TIMED_OUT")
						status = "failed";
				}
			} catch {
				// Unreachable now: try again next run, until the ping counts as lost.
			}
		}
		if (!status && nowMs - Date.parse(ping.sent_at) > LOST_AFTER_MS) status = "lost";
		if (!status) continue;
		await run(
			env.DB,
			"UPDATE keep_warm_pings SET status = ?, delay_ms = ?, execution_ms = ?, completed_at = ? WHERE id = ? AND status = 'sent'",
			status,
			delay,
			exec,
			now,
			ping.id,
		);
		settled.push({ id: ping.id, status, delay_ms: delay });
	}
	return settled;
}

/**
 * The keep-warm step of the cron: collects earlier pings' cold-start times, then, inside the configured hours,
 * sends one `health_check` job to each configured backend so an idle worker stays up (the endpoint's idle
 * timeout must outlast the cron interval for this to work; see docs/operations.md).
 */
export async function runKeepWarm(env: Env, scheduledTime: number, log?: Logger): Promise<KeepWarmOutcome> {
	const config = configOf(env).keepWarm;
	const settled = await settlePings(env, scheduledTime);
	const inWindow = config.backends.length > 0 && isWithinHours(config, scheduledTime);
	const sent: KeepWarmOutcome["sent"] = [];
	if (inWindow) {
		const now = new Date(scheduledTime).toISOString();
		for (const name of config.backends) sent.push(await sendPing(env, name, now));
	}
	for (const s of sent) log?.[s.ok ? "info" : "warn"]("keep_warm_ping", { ...s });
	for (const s of settled) log?.info("keep_warm_settled", { ...s });
	return { inWindow, sent, settled };
}
