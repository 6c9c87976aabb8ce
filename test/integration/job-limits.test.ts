/**
 * A job's own priority and time limits, set at creation the way a client would: `priority` orders an account's
 * own waiting jobs (never ahead of another account's), `start_by` fails a job no backend started in time and frees
 * its place, `max_runtime_s` cancels a run that outlives it; RunPod gets them as the job's policy.
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { policyFor } from "../../src/backends/runpod";
import type { JobView } from "../../src/schemas/jobs";
import { emulator, prompt, putPodBackend } from "../emulators/pod/harness";
import { putRunpodBackend, rpJob } from "../emulators/runpod/harness";
import { ADMIN, call, newAccount, PNG, upload } from "../helpers/api";
import { record, stepUntil, stub } from "../helpers/job-object";

const who: Record<string, { auth: Record<string, string>; image: string }> = {};
const created: string[] = [];

beforeAll(async () => {
	for (const name of ["lim-alice", "lim-bob"]) {
		const auth = await newAccount(name);
		who[name] = { auth, image: await upload(auth, PNG, "image/png", "a.png") };
	}
});

afterEach(async () => {
	for (const name of created.splice(0)) await call(`/v1/admin/backends/${name}`, { method: "DELETE", headers: ADMIN });
});

const auth = (account: string) => who[account]?.auth ?? {};

function create(account: string, body: Record<string, unknown>): Promise<Response> {
	return call("/v1/jobs", {
		method: "POST",
		headers: auth(account),
		body: JSON.stringify({
			model: "preview",
			input: { image: who[account]?.image, prompt: prompt() },
			...body,
		}),
	});
}

async function start(account: string, body: Record<string, unknown>): Promise<JobView> {
	const res = await create(account, body);
	expect(res.status).toBe(202);
	return (await res.json()) as JobView;
}

async function view(account: string, id: string): Promise<JobView> {
	return (await (await call(`/v1/jobs/${id}`, { headers: auth(account) })).json()) as JobView;
}

async function podBackend(name: string, extra: Record<string, unknown> = {}): Promise<void> {
	expect((await putPodBackend(name, { models: ["preview"], ...extra })).status).toBe(200);
	created.push(name);
}

describe("validation", () => {
	it.each([
		[{ priority: "urgent" }, "json.priority"],
		[{ start_by: "tomorrow" }, "json.start_by"],
		[{ start_by: new Date(Date.now() - 60_000).toISOString() }, "json.start_by"],
		[{ start_by: new Date(Date.now() + 400 * 86_400_000).toISOString() }, "json.start_by"],
		[{ max_runtime_s: 1 }, "json.max_runtime_s"],
		[{ max_runtime_s: 600_000 }, "json.max_runtime_s"],
	])("%j is refused with a problem naming %s", async (body, path) => {
		await podBackend("lim-valid");
		const res = await create("lim-alice", { backend: "lim-valid", ...body });
		expect(res.status).toBe(400);
		const problem = (await res.json()) as { code: string; errors: { path: string; message: string }[] };
		expect(problem.code).toBe("invalid_request");
		expect(problem.errors.map((e) => e.path)).toContain(path);
	});

	it("shows the limits it accepted on the job", async () => {
		await podBackend("lim-shown");
		const startBy = new Date(Date.now() + 600_000).toISOString();
		const job = await start("lim-alice", {
			backend: "lim-shown",
			priority: "high",
			start_by: startBy,
			max_runtime_s: 90,
		});
		expect(job).toMatchObject({ priority: "high", start_by: startBy, max_runtime_s: 90 });
		expect(await view("lim-alice", job.id)).toMatchObject({ priority: "high", start_by: startBy, max_runtime_s: 90 });
		await call(`/v1/jobs/${job.id}/cancel`, { method: "POST", headers: auth("lim-alice") });
	});
});

describe("priority", () => {
	it("orders an account's own waiting jobs, never ahead of another account's", async () => {
		await podBackend("lim-prio", { max_concurrency: 1 });
		const holder = await start("lim-alice", { backend: "lim-prio" });
		await stepUntil(holder.id, (j) => j.remote_id !== null);
		const aliceNormal = await start("lim-alice", { backend: "lim-prio" });
		const bobLow = await start("lim-bob", { backend: "lim-prio", priority: "low" });
		const aliceHigh = await start("lim-alice", { backend: "lim-prio", priority: "high" });
		for (const j of [aliceNormal, bobLow, aliceHigh])
			await stepUntil(j.id, (r) => r.queue?.reason === "waiting_for_capacity");
		// Positions as of each job's last check: read them again now that all three wait.
		for (const j of [aliceNormal, bobLow, aliceHigh]) await runDurableObjectAlarm(stub(j.id));
		const place = async (account: string, id: string) => (await view(account, id)).queue?.position;
		// Bob holds no slot: his low-priority job still goes first. Alice's high one goes before her normal one.
		expect(await place("lim-bob", bobLow.id)).toBe(1);
		expect(await place("lim-alice", aliceHigh.id)).toBe(2);
		expect(await place("lim-alice", aliceNormal.id)).toBe(3);
		for (const [account, j] of [
			["lim-alice", holder],
			["lim-alice", aliceNormal],
			["lim-bob", bobLow],
			["lim-alice", aliceHigh],
		] as const) {
			await call(`/v1/jobs/${j.id}/cancel`, { method: "POST", headers: auth(account) });
		}
	});
});

describe("start_by", () => {
	it("fails a job no backend started in time with not_started_in_time and frees its place", async () => {
		await podBackend("lim-start", { max_concurrency: 1 });
		const holder = await start("lim-alice", { backend: "lim-start" });
		await stepUntil(holder.id, (j) => j.remote_id !== null);
		const startBy = Date.now() + 1_000;
		const late = await start("lim-bob", { backend: "lim-start", start_by: new Date(startBy).toISOString() });
		const waiting = await stepUntil(late.id, (j) => j.queue?.reason === "waiting_for_capacity");
		// The next step is due by start_by, though the admission recheck is 10 s away.
		expect(waiting.next_at ?? 0).toBeLessThanOrEqual(startBy);
		expect(await env.BACKENDS.getByName("lim-start").snapshot()).toMatchObject({ waiting: 1 });
		while (Date.now() < startBy) await scheduler.wait(50);
		const failed = await stepUntil(late.id, (j) => j.status === "failed");
		expect(failed.error?.code).toBe("not_started_in_time");
		expect(await view("lim-bob", late.id)).toMatchObject({ status: "failed", error: { code: "not_started_in_time" } });
		expect(await env.BACKENDS.getByName("lim-start").snapshot()).toMatchObject({ waiting: 0 });
		await call(`/v1/jobs/${holder.id}/cancel`, { method: "POST", headers: auth("lim-alice") });
	});
});

describe("max_runtime_s", () => {
	it("is RunPod's executionTimeout, and a run past it is canceled: the job fails with max_runtime_exceeded", async () => {
		expect((await putRunpodBackend("lim-rp", { models: ["preview"] })).status).toBe(200);
		created.push("lim-rp");
		const startBy = new Date(Date.now() + 120_000).toISOString();
		const job = await start("lim-alice", { backend: "lim-rp", max_runtime_s: 60, start_by: startBy });
		const running = await stepUntil(job.id, (j) => j.status === "running");
		const remote = await rpJob(running.remote_id ?? "");
		expect(remote.policy?.executionTimeout).toBe(60_000);
		// ttl: what is left until start_by, plus the run.
		expect(remote.policy?.ttl).toBeGreaterThan(170_000);
		expect(remote.policy?.ttl).toBeLessThanOrEqual(180_000);
		// The run started longer ago than its limit (the record's clock moved back instead of waiting a minute).
		await runInDurableObject(stub(job.id), (_i, state) => {
			state.storage.sql.exec("UPDATE job SET started_at = ?", new Date(Date.now() - 61_000).toISOString());
		});
		// Restarted, the object reads the edited row (a live one keeps the row it parsed).
		await evictDurableObject(stub(job.id));
		const ended = await stepUntil(job.id, (j) => j.status === "failed");
		expect(ended.error?.code).toBe("max_runtime_exceeded");
		expect((await rpJob(running.remote_id ?? "")).status).toBe("CANCELLED");
		expect((await record(job.id)).status).toBe("failed");
	});

	it("reaches our GPU worker in pod mode as its policy.executionTimeout", async () => {
		await podBackend("lim-pod");
		const job = await start("lim-bob", { backend: "lim-pod", max_runtime_s: 45 });
		const submitted = await stepUntil(job.id, (j) => j.remote_id !== null);
		const remote = (await (await emulator(`/_control/jobs/${submitted.remote_id}`)).json()) as { policy?: unknown };
		expect(remote.policy).toEqual({ executionTimeout: 45_000 });
		await call(`/v1/jobs/${job.id}/cancel`, { method: "POST", headers: auth("lim-bob") });
	});

	it("tightens the backend's policy, never loosens it, and stays within RunPod's bounds", () => {
		const base = { executionTimeout: 1_800_000, ttl: 7_200_000 };
		const now = Date.parse("2026-01-01T00:00:00Z");
		expect(policyFor(base, {}, now)).toEqual(base);
		expect(policyFor(base, { maxRuntimeS: 7200 }, now)).toEqual(base);
		expect(policyFor(base, { maxRuntimeS: 2 }, now).executionTimeout).toBe(5_000);
		expect(policyFor(base, { startBy: "2026-01-01T00:00:01Z", maxRuntimeS: 5 }, now)).toEqual({
			executionTimeout: 5_000,
			ttl: 10_000,
		});
	});
});
