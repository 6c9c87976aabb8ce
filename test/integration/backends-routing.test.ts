/**
 * Routing across several emulated backends: admission up to max_concurrency with a queue fair across accounts,
 * choice by priority and cost, the circuit breaker, and failover of jobs a backend refused before they ran.
 * Each test uses its own model or pins its jobs, and removes its backends, so routing sees only its own.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { JobRecord } from "../../src/jobs/record";
import { prompt, putPodBackend, relayTransfers } from "../emulators/pod/harness";
import { putRunpodBackend, rpControl } from "../emulators/runpod/harness";
import { ADMIN, call, newAccount, PNG, upload } from "../helpers/api";
import { history, record, stepUntil, stub } from "../helpers/job-object";

let alice: Record<string, string>;
let bob: Record<string, string>;
let aliceImage: string;
let bobImage: string;
const created: string[] = [];

beforeAll(async () => {
	alice = await newAccount("route-alice");
	bob = await newAccount("route-bob");
	aliceImage = await upload(alice, PNG, "image/png", "a.png");
	bobImage = await upload(bob, PNG, "image/png", "b.png");
});

afterEach(async () => {
	for (const name of created.splice(0)) await call(`/v1/admin/backends/${name}`, { method: "DELETE", headers: ADMIN });
});

async function pod(name: string, extra: Record<string, unknown>): Promise<void> {
	expect((await putPodBackend(name, extra)).status).toBe(200);
	created.push(name);
}

async function rp(name: string, extra: Record<string, unknown>): Promise<void> {
	expect((await putRunpodBackend(name, extra)).status).toBe(200);
	created.push(name);
}

async function startJob(
	who: "alice" | "bob",
	model: string,
	text: string,
	backend?: string,
): Promise<{ id: string; backend: string }> {
	const res = await call("/v1/jobs", {
		method: "POST",
		headers: who === "alice" ? alice : bob,
		body: JSON.stringify({
			model,
			...(backend ? { backend } : {}),
			input: { image: who === "alice" ? aliceImage : bobImage, prompt: text },
		}),
	});
	expect(res.status).toBe(202);
	const body = (await res.json()) as { id: string; backend: { name: string } };
	return { id: body.id, backend: body.backend.name };
}

/** Steps a pod-emulator job to its end, relaying its transfers. */
async function podToEnd(id: string): Promise<JobRecord> {
	const running = await stepUntil(id, (j) => j.status !== "queued");
	if (running.status === "running") await relayTransfers(running.remote_id ?? "");
	return stepUntil(id, (j) => j.status === "succeeded" || j.status === "failed");
}

const events = async (id: string) => (await history(id)).map((h) => h.event);

describe("admission", () => {
	it("admits up to max_concurrency; a freed slot goes to the account served longest ago", async () => {
		await pod("adm-1", { models: ["preview"], max_concurrency: 1 });
		const a1 = await startJob("alice", "preview", prompt(), "adm-1");
		await stepUntil(a1.id, (j) => j.remote_id !== null);
		const a2 = await startJob("alice", "preview", prompt(), "adm-1");
		const b1 = await startJob("bob", "preview", prompt(), "adm-1");
		for (const j of [a2, b1]) {
			await runDurableObjectAlarm(stub(j.id));
			expect((await record(j.id)).remote_id).toBeNull();
			expect(await events(j.id)).toContain("waiting");
		}
		expect(await env.BACKENDS.getByName("adm-1").snapshot()).toMatchObject({ in_flight: 1, waiting: 2 });
		const listed = (await (await call("/v1/admin/backends", { headers: ADMIN })).json()) as {
			data: { name: string; routing: unknown }[];
		};
		expect(listed.data.find((b) => b.name === "adm-1")?.routing).toEqual({
			in_flight: 1,
			waiting: 2,
			circuit: "closed",
		});
		expect((await podToEnd(a1.id)).status).toBe("succeeded");
		// The finished job gave its slot back as it ended, and the backend handed it on at once (no check of its
		// holders needed): bob first, although alice's second job asked earlier, since alice was just served.
		expect(await env.BACKENDS.getByName("adm-1").snapshot()).toMatchObject({ in_flight: 1, waiting: 1 });
		const bJob = await stepUntil(b1.id, (j) => j.remote_id !== null, 3);
		expect(bJob.attempts).toBe(1);
		await runDurableObjectAlarm(stub(a2.id));
		expect((await record(a2.id)).remote_id).toBeNull();
		expect((await podToEnd(b1.id)).status).toBe("succeeded");
		expect((await podToEnd(a2.id)).status).toBe("succeeded");
	});

	it("recovers a slot whose release was lost by asking its holder, once the backend is full", async () => {
		await pod("adm-lost", { models: ["preview"], max_concurrency: 1 });
		// A holder whose job no longer exists: its release never came.
		await runInDurableObject(env.BACKENDS.getByName("adm-lost"), (_instance, state) => {
			state.storage.sql.exec(
				"INSERT INTO slot (job_id, account_id, at) VALUES ('job_gone', 'nobody', ?)",
				Date.now() - 60_000,
			);
		});
		expect(await env.BACKENDS.getByName("adm-lost").snapshot()).toMatchObject({ in_flight: 1, waiting: 0 });
		const job = await startJob("alice", "preview", prompt(), "adm-lost");
		expect((await stepUntil(job.id, (j) => j.remote_id !== null, 3)).attempts).toBe(1);
		expect(await env.BACKENDS.getByName("adm-lost").snapshot()).toMatchObject({ in_flight: 1, waiting: 0 });
	});
});

describe("choice", () => {
	it("prefers priority, then a backend able to start now, then the cheaper one", async () => {
		await pod("cost-cheap", { models: ["preview"], priority: 1, price_per_second_usd: 0.0001, max_concurrency: 1 });
		await pod("cost-dear", { models: ["preview"], priority: 1, price_per_second_usd: 0.0009 });
		const first = await startJob("alice", "preview", prompt());
		expect(first.backend).toBe("cost-cheap");
		await stepUntil(first.id, (j) => j.remote_id !== null);
		// cost-cheap is now full: the dearer one can start at once.
		const second = await startJob("bob", "preview", prompt());
		expect(second.backend).toBe("cost-dear");
		// A higher priority wins over cost.
		await pod("cost-top", { models: ["preview"], priority: 9, price_per_second_usd: 0.01 });
		expect((await startJob("bob", "preview", prompt())).backend).toBe("cost-top");
	});
});

describe("failover", () => {
	it("a backend that refuses the job (401) hands it to the next one; the job runs once", async () => {
		await rp("fo-badkey", { models: ["wan2.2-i2v"], priority: 10, config: { api_key: "wrong-key" } });
		await pod("fo-good", { models: ["wan2.2-i2v"], priority: 1 });
		const job = await startJob("alice", "wan2.2-i2v", prompt());
		expect(job.backend).toBe("fo-badkey");
		const moved = await stepUntil(job.id, (j) => j.spec.backend.name === "fo-good");
		expect(moved.spec.tried_backends).toEqual(["fo-badkey"]);
		const done = await podToEnd(job.id);
		expect(done.status).toBe("succeeded");
		expect(done.attempts).toBe(1);
		expect(await events(job.id)).toContain("failover");
		const view = (await (await call(`/v1/jobs/${job.id}`, { headers: alice })).json()) as { backend: { name: string } };
		expect(view.backend.name).toBe("fo-good");
	});

	it("a backend answering 503 is retried, then left for the next one", async () => {
		await rpControl("/endpoints/ep-flaky", { method: "PUT", body: JSON.stringify({ run: 503 }) });
		await rp("fo-flaky", { models: ["wan2.2-i2v"], priority: 10, config: { endpoint_id: "ep-flaky" } });
		await pod("fo-backup", { models: ["wan2.2-i2v"], priority: 1, price_per_second_usd: 0.001 });
		const job = await startJob("bob", "wan2.2-i2v", prompt());
		expect(job.backend).toBe("fo-flaky");
		const done = await podToEnd(job.id);
		expect(done.status).toBe("succeeded");
		expect(done.spec.backend).toMatchObject({ name: "fo-backup", price_per_second_usd: 0.001 });
		const history = await events(job.id);
		expect(history.filter((e) => e === "retry")).toHaveLength(1);
		expect(history).toContain("failover");
		expect(((await (await rpControl("/endpoints/ep-flaky")).json()) as { runs: number }).runs).toBe(2);
	});

	it("when every eligible backend refuses, the job fails with the last error (it is never left waiting)", async () => {
		await rp("fo-all-1", { models: ["wan2.2-i2v"], priority: 10, config: { api_key: "wrong-1" } });
		await rp("fo-all-2", { models: ["wan2.2-i2v"], priority: 5, config: { endpoint_id: "ep-nowhere" } });
		const job = await startJob("bob", "wan2.2-i2v", prompt());
		const done = await stepUntil(job.id, (j) => j.status === "failed");
		expect(done.spec.tried_backends).toEqual(["fo-all-1"]);
		expect(done.spec.backend.name).toBe("fo-all-2");
		expect(done.error).toMatchObject({
			code: "backend_error",
			message: expect.stringMatching(/does not know this endpoint/),
		});
		expect(done.attempts).toBe(0);
	});

	it("a job that named its backend stays there and fails with the backend's error", async () => {
		await rp("fo-pinned", { models: ["wan2.2-i2v"], config: { api_key: "wrong-key" } });
		await pod("fo-other", { models: ["wan2.2-i2v"] });
		const job = await startJob("alice", "wan2.2-i2v", prompt(), "fo-pinned");
		const done = await stepUntil(job.id, (j) => j.status === "failed");
		expect(done.spec.backend.name).toBe("fo-pinned");
		expect(done.error?.message).toMatch(/API key/);
	});
});

describe("circuit breaker", () => {
	it("opens after consecutive failures: pinned jobs wait, new jobs go elsewhere, a success closes it", async () => {
		await rpControl("/endpoints/ep-down", { method: "PUT", body: JSON.stringify({ run: 502 }) });
		await rp("cb-down", { models: ["wan2.2-i2v"], priority: 10, config: { endpoint_id: "ep-down" } });
		await pod("cb-up", { models: ["wan2.2-i2v"], priority: 1 });
		const pinned = await startJob("alice", "wan2.2-i2v", prompt(), "cb-down");
		await stepUntil(pinned.id, (j) => j.transient_failures >= 3);
		const snap = await env.BACKENDS.getByName("cb-down").snapshot();
		expect(snap.breaker.state).toBe("open");
		// The pinned job now waits for the cooldown instead of hammering the backend.
		const before = Date.now();
		await runDurableObjectAlarm(stub(pinned.id));
		const waiting = await record(pinned.id);
		expect(waiting.status).toBe("queued");
		expect(waiting.next_at ?? 0).toBeGreaterThan(before + 20_000);
		expect(await events(pinned.id)).toContain("waiting");
		// A new job is routed to the healthy backend despite its lower priority.
		expect((await startJob("bob", "wan2.2-i2v", prompt())).backend).toBe("cb-up");
		// The half-open probe succeeds once the endpoint recovers: the breaker closes (simulated by a report).
		expect((await env.BACKENDS.getByName("cb-down").report(true)).state).toBe("closed");
		await call(`/v1/jobs/${pinned.id}/cancel`, { method: "POST", headers: alice });
	});
});
