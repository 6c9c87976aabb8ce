/**
 * Where a waiting job stands, as a client sees it: `queue` on GET, in the event stream and in listings, from the
 * backend's real admission state (its fair queue, its circuit breaker). Each test uses its own pinned backends and
 * removes them.
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { FAIR_AHEAD, FAIR_ORDER } from "../../durable-objects/backend";
import type { JobRecord } from "../../src/jobs/record";
import type { JobView } from "../../src/schemas/jobs";
import { prompt, putPodBackend, relayTransfers } from "../emulators/pod/harness";
import { putRunpodBackend, rpControl } from "../emulators/runpod/harness";
import { ADMIN, call, newAccount, PNG, upload } from "../helpers/api";
import { stepUntil, stub } from "../helpers/job-object";

const accounts: Record<string, { auth: Record<string, string>; image: string }> = {};
const created: string[] = [];

beforeAll(async () => {
	for (const name of ["q-alice", "q-bob"]) {
		const auth = await newAccount(name);
		accounts[name] = { auth, image: await upload(auth, PNG, "image/png", "a.png") };
	}
});

afterEach(async () => {
	for (const name of created.splice(0)) await call(`/v1/admin/backends/${name}`, { method: "DELETE", headers: ADMIN });
});

/** Creates a job; answers the 202's job (as it stood before any step of it ran). */
async function create(who: string, backend: string, model = "preview"): Promise<JobView> {
	const { auth, image } = accounts[who] ?? { auth: {}, image: "" };
	const res = await call("/v1/jobs", {
		method: "POST",
		headers: auth,
		body: JSON.stringify({ model, backend, input: { image, prompt: prompt() } }),
	});
	expect(res.status).toBe(202);
	return (await res.json()) as JobView;
}

async function startJob(who: string, backend: string, model = "preview"): Promise<string> {
	return (await create(who, backend, model)).id;
}

async function view(who: string, id: string): Promise<JobView> {
	const res = await call(`/v1/jobs/${id}`, { headers: accounts[who]?.auth ?? {} });
	expect(res.status).toBe(200);
	return (await res.json()) as JobView;
}

async function podToEnd(id: string): Promise<JobRecord> {
	const running = await stepUntil(id, (j) => j.status !== "queued");
	if (running.status === "running") await relayTransfers(running.remote_id ?? "");
	return stepUntil(id, (j) => j.status === "succeeded" || j.status === "failed");
}

/** The stored events of a job (a resume from the start), read until `until` holds for those seen. */
async function eventsUntil(who: string, id: string, until: (seen: JobView[]) => boolean): Promise<JobView[]> {
	const res = await call(`/v1/jobs/${id}/events`, { headers: { ...accounts[who]?.auth, "last-event-id": "0" } });
	const reader = res.body?.getReader();
	if (!reader) throw new Error("no body");
	const decoder = new TextDecoder();
	let text = "";
	const seen: JobView[] = [];
	const timer = setTimeout(() => reader.cancel().catch(() => undefined), 10_000);
	try {
		for (;;) {
			const frames = text.split("\n\n");
			text = frames.pop() ?? "";
			for (const frame of frames) {
				const data = frame.split("\n").find((l) => l.startsWith("data: "));
				if (data) seen.push(JSON.parse(data.slice(6)) as JobView);
			}
			if (until(seen)) return seen;
			const { value, done } = await reader.read();
			if (done) return seen;
			text += decoder.decode(value, { stream: true });
		}
	} finally {
		clearTimeout(timer);
		await reader.cancel().catch(() => undefined);
	}
}

describe("queue", () => {
	it("a job waiting for a slot shows its fair place, which moves up as slots free", async () => {
		expect((await putPodBackend("q-one", { models: ["preview"], max_concurrency: 1 })).status).toBe(200);
		created.push("q-one");
		const fresh = await create("q-alice", "q-one");
		const first = fresh.id;
		expect(fresh.queue).toMatchObject({ reason: "submitting", position: 0 });
		// Known from creation: the model's default, before the backend has measured anything.
		expect(fresh.eta).toMatchObject({ basis: "default", samples: 0 });
		await stepUntil(first, (j) => j.remote_id !== null);
		const holder = await view("q-alice", first);
		expect(holder.status === "running" || holder.queue?.reason === "backend_queued").toBe(true);

		const aliceSecond = await startJob("q-alice", "q-one");
		const bobFirst = await startJob("q-bob", "q-one");
		for (const id of [aliceSecond, bobFirst]) await runDurableObjectAlarm(stub(id));
		// Alice's second job asked first, but admission serves the account holding fewer slots first: bob.
		await runDurableObjectAlarm(stub(aliceSecond));
		const bob = await view("q-bob", bobFirst);
		const alice = await view("q-alice", aliceSecond);
		expect(bob.queue).toMatchObject({ reason: "waiting_for_capacity", position: 1, ahead: 1 });
		expect(alice.queue).toMatchObject({ reason: "waiting_for_capacity", position: 2, ahead: 2 });
		expect(Date.parse(alice.queue?.since ?? "")).toBeGreaterThanOrEqual(Date.parse(alice.created_at));
		// No run measured here yet and no throughput figure for preview: the default, alice's start after bob's.
		expect(bob.eta).toMatchObject({ basis: "default", samples: 0 });
		expect(Date.parse(alice.eta?.start_at ?? "")).toBeGreaterThan(Date.parse(bob.eta?.start_at ?? ""));
		const span = (v: JobView) => Date.parse(v.eta?.finish_at ?? "") - Date.parse(v.eta?.start_at ?? "");
		expect(span(alice)).toBe(span(bob));
		// The listing carries it too.
		const listed = (await (await call("/v1/jobs?status=queued", { headers: accounts["q-alice"]?.auth })).json()) as {
			data: JobView[];
		};
		expect(listed.data.find((j) => j.id === aliceSecond)?.queue?.reason).toBe("waiting_for_capacity");

		// The first job ends; the backend hands its slot to bob, and alice's job moves up to the head of the queue.
		const running = await stepUntil(first, (j) => j.status === "running" && j.progress.percent > 0);
		expect((await view("q-alice", first)).eta?.start_at).toBe(running.started_at);
		expect((await podToEnd(first)).status).toBe("succeeded");
		expect((await view("q-alice", first)).eta).toBeUndefined();
		expect((await view("q-alice", first)).queue).toBeUndefined();
		await runDurableObjectAlarm(env.BACKENDS.getByName("q-one"));
		await stepUntil(bobFirst, (j) => j.remote_id !== null, 3);
		// The grant also woke alice's job (the nearest still waiting): it learns its new place without its own
		// recheck, which is 10 s away.
		const moved = await vi.waitFor(
			async () => {
				const v = await view("q-alice", aliceSecond);
				expect(v.queue).toMatchObject({ reason: "waiting_for_capacity", position: 1, ahead: 1 });
				return v;
			},
			{ timeout: 5_000, interval: 50 },
		);
		expect(moved.queue?.since).toBe(alice.queue?.since);
		// The first job's run (5.4 s at the emulator) is now measured: the same work is expected to take as long.
		expect(moved.eta).toMatchObject({ basis: "measured", samples: 1 });
		expect(span(moved)).toBe(5_400);
		// The event stream told each change of place as it happened.
		// Alice's job was behind bob's (a fairer claim: her account holds a slot), then first: the stream told both.
		// (Had her first check come before bob's job asked, it also told her first place alone: 1, 2, 1.)
		const places = (j: JobView[]) =>
			j.filter((d) => d.queue?.reason === "waiting_for_capacity").map((d) => d.queue?.position);
		const movedUp = (seen: JobView[]) => places(seen).slice(-2).join() === "2,1";
		const events = await eventsUntil("q-alice", aliceSecond, movedUp);
		expect(movedUp(events)).toBe(true);
		expect([
			[2, 1],
			[1, 2, 1],
		]).toContainEqual(places(events));

		for (const [who, id] of [
			["q-bob", bobFirst],
			["q-alice", aliceSecond],
		] as const) {
			await call(`/v1/jobs/${id}/cancel`, { method: "POST", headers: accounts[who]?.auth });
		}
	});

	it("a queued job with no recorded reason (stored by older code) says the reason is unknown", async () => {
		expect((await putPodBackend("q-old", { models: ["preview"], max_concurrency: 1 })).status).toBe(200);
		created.push("q-old");
		const holder = await startJob("q-alice", "q-old");
		await stepUntil(holder, (j) => j.remote_id !== null);
		const id = await startJob("q-bob", "q-old");
		await stepUntil(id, (j) => j.queue?.reason === "waiting_for_capacity");
		await runInDurableObject(stub(id), (_i, state) => {
			state.storage.sql.exec("UPDATE job SET queue = NULL");
		});
		// As older code left it and a restarted object reads it (a live one keeps the row it parsed).
		await evictDurableObject(stub(id));
		const old = await view("q-bob", id);
		expect(old.queue).toEqual({ reason: "unknown", position: 0, ahead: 0, since: expect.any(String) });
		for (const [who, job] of [
			["q-alice", holder],
			["q-bob", id],
		] as const) {
			await call(`/v1/jobs/${job}/cancel`, { method: "POST", headers: accounts[who]?.auth });
		}
	});

	it("a job whose backend keeps failing says so, and when a probe may go through", async () => {
		await rpControl("/endpoints/ep-q-down", { method: "PUT", body: JSON.stringify({ run: 502 }) });
		const res = await putRunpodBackend("q-down", { models: ["wan2.2-i2v"], config: { endpoint_id: "ep-q-down" } });
		expect(res.status).toBe(200);
		created.push("q-down");
		const id = await startJob("q-bob", "q-down", "wan2.2-i2v");
		await stepUntil(id, (j) => j.transient_failures >= 1);
		const retrying = await view("q-bob", id);
		expect(retrying.queue).toMatchObject({ reason: "retrying", position: 0 });
		expect(Date.parse(retrying.queue?.retry_at ?? "")).toBeGreaterThan(Date.now() - 1000);
		await stepUntil(id, (j) => j.transient_failures >= 3);
		const before = Date.now();
		await runDurableObjectAlarm(stub(id));
		const unhealthy = await view("q-bob", id);
		expect(unhealthy.queue?.reason).toBe("backend_unhealthy");
		expect(Date.parse(unhealthy.queue?.retry_at ?? "")).toBeGreaterThan(before + 20_000);
		await call(`/v1/jobs/${id}/cancel`, { method: "POST", headers: accounts["q-bob"]?.auth });
		const canceled = await view("q-bob", id);
		expect(canceled.status).toBe("canceled");
		expect(canceled.queue).toBeUndefined();
	});
});

describe("a waiting job's place", () => {
	it("is counted as the fair order sorts the queue, for any mix of accounts, slots, rounds and priorities", async () => {
		const backend = env.BACKENDS.getByName(`q-place-${crypto.randomUUID().slice(0, 8)}`);
		const mismatches = await runInDurableObject(backend, (_instance, state) => {
			const sql = state.storage.sql;
			// A fixed-seed generator: the same mixes on every run.
			let seed = 7;
			const draw = (n: number) => {
				seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
				return seed % n;
			};
			const wrong: string[] = [];
			for (let round = 0; round < 20; round++) {
				for (const table of ["waiting", "slot", "served"]) sql.exec(`DELETE FROM ${table}`);
				const accounts = Array.from({ length: 1 + draw(5) }, (_, i) => `acct_${i}`);
				for (let i = 0; i < 3 + draw(30); i++) {
					const account = accounts[draw(accounts.length)] ?? "acct_0";
					sql.exec(
						"INSERT INTO waiting (job_id, account_id, at, priority) VALUES (?, ?, ?, ?)",
						`job_${round}_${i}`,
						account,
						i,
						draw(3),
					);
				}
				for (const account of accounts) {
					for (let h = draw(3); h > 0; h--) {
						sql.exec("INSERT INTO slot (job_id, account_id, at) VALUES (?, ?, 0)", `held_${account}_${h}`, account);
					}
					if (draw(2)) sql.exec("INSERT INTO served (account_id, at) VALUES (?, ?)", account, draw(4));
				}
				const sorted = sql
					.exec<{ job_id: string }>(`SELECT w.job_id FROM waiting w ${FAIR_ORDER}`)
					.toArray()
					.map((r) => r.job_id);
				for (const [place, jobId] of sorted.entries()) {
					const ahead = sql.exec<{ ahead: number }>(FAIR_AHEAD, jobId).toArray()[0]?.ahead;
					if (ahead !== place) wrong.push(`round ${round}: ${jobId} counted ${ahead}, sorted ${place}`);
				}
				if (sql.exec(FAIR_AHEAD, "job_not_waiting").toArray().length !== 0) wrong.push(`round ${round}: a row`);
			}
			return wrong;
		});
		expect(mismatches).toEqual([]);
	});
});
