/**
 * The vastai backend against vast.ai's failures (test/emulators/vastai/server.ts, each test in its own fault
 * scope): offers that can be rented once, a refused key, no offer, an instance killed under a job, a refused
 * destroy. Each asks what a client or an operator sees through the public API, and what is left billing.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN, call, newAccount, PNG, upload } from "../helpers/api";
import { history, record, stepUntil } from "../helpers/job-object";
import {
	instances as allInstances,
	type EmuInstance,
	putVast as putVastBackend,
	startWanJob,
	vast,
} from "../helpers/vast";

let auth: Record<string, string>;
let image: string;

interface VastView {
	instance: { id: number; status: string } | null;
	waiting: { reason: string; message: string; no_offer_since: number | null } | null;
	deleting: { attempts: number; next_at: string; remaining: { id: number; message: string }[] } | null;
}

async function instances(backend: string): Promise<EmuInstance[]> {
	return (await allInstances()).filter((i) => i.label === `reelgate:${backend}`);
}

/** Sets the faults of the emulator scope named after the backend (its API key is `<key>.<backend>`). */
async function faults(backend: string, set: Record<string, unknown>): Promise<void> {
	const res = await fetch(`${vast().url}/_control/scopes/${backend}`, { method: "PUT", body: JSON.stringify(set) });
	expect(res.status).toBe(200);
}

/** The backend in its own fault scope, keeping its idle instance unless a test says otherwise. */
const putVast = (name: string, config: Record<string, unknown> = {}) =>
	putVastBackend(name, { api_key: `${vast().apiKey}.${name}`, idle_destroy_s: 3600, ...config });

const startJob = (backend: string) => startWanJob(auth, image, backend);

/** The backend as the admin API lists it (null: gone). */
async function adminView(name: string): Promise<{ enabled: boolean; vast: VastView | null } | null> {
	const res = await call("/v1/admin/backends", { headers: ADMIN });
	const list = (await res.json()) as { data: { name: string; enabled: boolean; vast: VastView | null }[] };
	return list.data.find((b) => b.name === name) ?? null;
}

const instanceOf = (remoteId: string | null) => Number(remoteId?.split("/")[0]);

beforeAll(async () => {
	auth = await newAccount("vast-faults");
	image = await upload(auth, PNG, "image/png", "fox.png");
});

describe("vastai backend under faults", () => {
	it("simultaneous jobs rent one instance, even where an offer can be rented only once", async () => {
		await faults("vf-race", { single_use_offers: true });
		await putVast("vf-race");
		const ids = await Promise.all([startJob("vf-race"), startJob("vf-race"), startJob("vf-race")]);
		// Every job's first step at the same moment, then each job on to the end.
		const [a, b, c] = ids.map((id) => env.JOBS.getByName(id));
		await Promise.all([a, b, c].map((s) => (s ? runDurableObjectAlarm(s) : undefined)));
		const done = await Promise.all(ids.map((id) => stepUntil(id, (j) => j.status === "succeeded", 25)));
		const rented = await instances("vf-race");
		expect(rented).toHaveLength(1);
		expect(new Set(done.map((j) => instanceOf(j.remote_id)))).toEqual(new Set([rented[0]?.id]));
		// Simultaneous ensure calls share one step: one search, one create.
		const stub = env.BACKENDS.getByName("vf-race");
		const answers = await Promise.all([stub.vastEnsure("vf-race"), stub.vastEnsure("vf-race")]);
		expect(answers.map((x) => x.state?.instance_id)).toEqual([rented[0]?.id, rented[0]?.id]);
		expect(await instances("vf-race")).toHaveLength(1);
	});

	it("a refused API key fails the job at once as backend_misconfigured, with vast.ai's words and no key", async () => {
		await faults("vf-key", { refuse_key: true });
		await putVast("vf-key");
		const id = await startJob("vf-key");
		const job = await stepUntil(id, (j) => j.status === "failed", 4);
		expect(job.error?.code).toBe("backend_misconfigured");
		expect(job.error?.message).toContain("vast.ai refused the backend's API key");
		expect(job.error?.message).toContain("Invalid API key.");
		expect(JSON.stringify(job)).not.toContain(vast().apiKey);
		expect((await adminView("vf-key"))?.vast?.waiting?.reason).toBe("misconfigured");
		// The backend's test says so too.
		const tested = await call("/v1/admin/backends/vf-key/test", { method: "POST", headers: ADMIN });
		expect(await tested.json()).toMatchObject({
			reachable: false,
			details: { error: "vast.ai answered HTTP 401: Invalid API key.", waiting: { reason: "misconfigured" } },
		});
		expect(await instances("vf-key")).toHaveLength(0);
	});

	it("once a refused key opens the breaker, later jobs meet the refusal at once; a new configuration is judged afresh", async () => {
		await faults("vf-keys", { refuse_key: true });
		await putVast("vf-keys");
		for (let n = 0; n < 5; n++) {
			// Each fails without ever waiting: the breaker opens after three, and the jobs after them do not wait for
			// its half-open probe to be refused again. (Steps beyond one only absorb the object's own alarm racing
			// the test's: a waiting job would show in its history.)
			const id = await startJob("vf-keys");
			const job = await stepUntil(id, (j) => j.status === "failed", 4);
			expect(job.error?.code).toBe("backend_misconfigured");
			expect(job.error?.message).toContain("Invalid API key.");
			expect((await history(id)).map((h) => h.event)).not.toContain("waiting");
		}
		expect((await env.BACKENDS.getByName("vf-keys").snapshot()).breaker.state).toBe("open");
		// The operator fixes the key: the breaker starts closed and the next job is sent, not refused.
		await faults("vf-keys", {});
		await putVast("vf-keys");
		expect((await env.BACKENDS.getByName("vf-keys").snapshot()).breaker).toMatchObject({
			state: "closed",
			failures: 0,
		});
		const fixed = await stepUntil(
			await startJob("vf-keys"),
			(j) => j.attempts > 0 || j.queue?.reason === "cold_start",
			4,
		);
		expect(fixed.status).not.toBe("failed");
	});

	it("with no matching offer a job says why it waits, then fails with no_capacity naming the filters", async () => {
		await faults("vf-none", { no_offers: true });
		await putVast("vf-none", { capacity_wait_s: 120, gpu_names: ["RTX 4090"] });
		const id = await startJob("vf-none");
		await stepUntil(id, (j) => j.transient_failures > 0, 4);
		const waits = (await history(id)).filter((h) => h.event === "retry");
		expect(waits.at(-1)?.detail).toContain("Waiting for a vast.ai offer matching the filters (VRAM >= 24 GB");
		const view = (await adminView("vf-none"))?.vast;
		expect(view?.waiting).toMatchObject({ reason: "booting" });
		expect(view?.waiting?.no_offer_since).toBeTypeOf("number");
		// Two minutes later (the wait's start moved back in the object's storage, instead of sleeping).
		await runInDurableObject(env.BACKENDS.getByName("vf-none"), (_instance, state) => {
			state.storage.sql.exec(
				"UPDATE meta SET value = json_set(value, '$.no_offer_since', json_extract(value, '$.no_offer_since') - 121000) WHERE key = 'vast_wait'",
			);
		});
		const job = await stepUntil(id, (j) => j.status === "failed", 4);
		expect(job.error?.code).toBe("no_capacity");
		expect(job.error?.message).toContain("price <= $0.5/h, reliability >= 0.99, GPU in RTX 4090");
		expect(job.error?.message).toContain("for 120 s");
		// A job arriving at once is told at once; one arriving after a quiet spell (no search for over the wait)
		// gets a wait of its own.
		const next = await startJob("vf-none");
		expect((await stepUntil(next, (j) => j.status === "failed", 4)).error?.code).toBe("no_capacity");
		await runInDurableObject(env.BACKENDS.getByName("vf-none"), (_instance, state) => {
			state.storage.sql.exec(
				"UPDATE meta SET value = json_set(value, '$.checked_at', json_extract(value, '$.checked_at') - 121000) WHERE key = 'vast_wait'",
			);
		});
		const later = await startJob("vf-none");
		expect((await stepUntil(later, (j) => j.transient_failures > 0, 4)).status).toBe("queued");
		expect(await instances("vf-none")).toHaveLength(0);
	});

	it("an instance killed under a queued job is noticed, destroyed and replaced, and the job runs again", async () => {
		await faults("vf-kill", {});
		await putVast("vf-kill");
		const id = await startJob("vf-kill");
		const submitted = await stepUntil(id, (j) => j.remote_id !== null, 12);
		const first = instanceOf(submitted.remote_id);
		expect((await fetch(`${vast().url}/_control/instances/${first}/kill`, { method: "POST" })).status).toBe(200);
		// The backend's watch tick (due while a job holds a slot on the instance) asks vast.ai and finds it exited.
		expect(await runDurableObjectAlarm(env.BACKENDS.getByName("vf-kill"))).toBe(true);
		expect((await instances("vf-kill")).find((i) => i.id === first)?.destroyed).toBe(true);
		const job = await stepUntil(id, (j) => j.status === "succeeded", 25);
		const second = instanceOf(job.remote_id);
		expect(second).not.toBe(first);
		expect(job.attempts).toBe(2);
		const lost = (await history(id)).find((h) => h.event === "lost");
		expect(lost?.detail).toContain(`instance ${first}`);
		const live = (await instances("vf-kill")).filter((i) => !i.destroyed);
		expect(live.map((i) => i.id)).toEqual([second]);
	});

	it("a job whose instance stops answering asks vast.ai, and a dead instance is replaced at once", async () => {
		await faults("vf-check", {});
		await putVast("vf-check");
		const id = await startJob("vf-check");
		const submitted = await stepUntil(id, (j) => j.remote_id !== null, 12);
		const first = instanceOf(submitted.remote_id);
		const stub = env.BACKENDS.getByName("vf-check");
		expect(await stub.vastCheck("vf-check", first)).toEqual({ gone: false, message: "vast.ai reports it running." });
		// The host dies: its port refuses connections. The job's next poll cannot reach ComfyUI, so it asks vast.ai.
		await fetch(`${vast().url}/_control/instances/${first}/kill`, { method: "POST" });
		const job = await stepUntil(id, (j) => j.status === "succeeded", 25);
		expect(instanceOf(job.remote_id)).not.toBe(first);
		expect(job.attempts).toBe(2);
		const lost = (await history(id)).find((h) => h.event === "lost");
		expect(lost?.detail).toContain(`The vast.ai instance ${first} is exited; it was destroyed and another is rented.`);
		// Never "backend could not be reached" until the deadline: at most the one failed poll before the check.
		expect(
			(await history(id)).filter((h) => h.event === "retry" && h.detail?.includes("could not be reached")),
		).toEqual([]);
		expect((await instances("vf-check")).find((i) => i.id === first)?.destroyed).toBe(true);
	});

	it("a host lost right after its boot is replaced, and the job still succeeds", async () => {
		await faults("vf-flaky", { first_dies_after_ms: 0 });
		await putVast("vf-flaky");
		const id = await startJob("vf-flaky");
		const job = await stepUntil(id, (j) => j.status === "succeeded", 30);
		const rented = await instances("vf-flaky");
		expect(rented.length).toBe(2);
		expect(rented[0]?.destroyed).toBe(true);
		expect(instanceOf(job.remote_id)).toBe(rented[1]?.id);
	});

	it("a create vast.ai rate-limits is retried no sooner than its Retry-After, with vast.ai's words", async () => {
		// Two refusals: whichever of the job's first steps ran (its own alarm, or one run here), the last was refused.
		await faults("vf-429", { create_429: 2, create_retry_after_s: 40 });
		await putVast("vf-429");
		const id = await startJob("vf-429");
		const waiting = await stepUntil(id, (j) => j.transient_failures > 0, 4);
		expect(waiting.status).toBe("queued");
		const last = (await history(id)).at(-1);
		expect(last).toMatchObject({
			event: "retry",
			detail: "Instance creation failed: vast.ai answered HTTP 429: Too many requests.",
		});
		const alarm = await runInDurableObject(env.JOBS.getByName(id), (_instance, state) => state.storage.getAlarm());
		expect(alarm).toBeGreaterThanOrEqual(Date.parse(last?.at ?? "") + 40_000 - 50);
		// Then it rents and runs.
		expect((await stepUntil(id, (j) => j.status === "succeeded", 25)).attempts).toBe(1);
		expect(await instances("vf-429")).toHaveLength(1);
	});

	it("deleting a backend whose destroy vast.ai refuses keeps it deleting until the instance is gone", async () => {
		await faults("vf-del", {});
		await putVast("vf-del");
		const id = await startJob("vf-del");
		const job = await stepUntil(id, (j) => j.status === "succeeded", 25);
		const inst = instanceOf(job.remote_id);
		await faults("vf-del", { destroy_status: 429, destroy_retry_after_s: 30 });
		const res = await call("/v1/admin/backends/vf-del", { method: "DELETE", headers: ADMIN });
		expect(res.status).toBe(202);
		const body = (await res.json()) as { enabled: boolean; vast: VastView };
		expect(body.enabled).toBe(false);
		expect(body.vast.deleting?.remaining.map((r) => r.id)).toContain(inst);
		expect(body.vast.deleting?.remaining[0]?.message).toContain("HTTP 429: Too many requests.");
		expect((await instances("vf-del")).find((i) => i.id === inst)?.destroyed).toBe(false);
		// Still listed, key kept: no job rents for it meanwhile.
		expect((await adminView("vf-del"))?.vast?.deleting?.attempts).toBe(1);
		const refused = await env.BACKENDS.getByName("vf-del").vastEnsure("vf-del");
		expect(refused).toMatchObject({ ready: false, reason: "misconfigured" });
		// Nor can it be brought back meanwhile.
		const put = await call("/v1/admin/backends/vf-del", {
			method: "PUT",
			headers: ADMIN,
			body: JSON.stringify({ kind: "vastai", config: { base_url: vast().url } }),
		});
		expect(put.status).toBe(409);
		expect(((await put.json()) as { detail: string }).detail).toContain(`instances ${inst} destroyed`);
		// A second refusal backs off further.
		await runDurableObjectAlarm(env.BACKENDS.getByName("vf-del"));
		const again = (await adminView("vf-del"))?.vast?.deleting;
		expect(again?.attempts).toBe(2);
		// vast.ai accepts again: the next retry destroys it and the backend goes.
		await faults("vf-del", {});
		await runDurableObjectAlarm(env.BACKENDS.getByName("vf-del"));
		expect((await instances("vf-del")).find((i) => i.id === inst)?.destroyed).toBe(true);
		expect(await adminView("vf-del")).toBeNull();
		expect((await record(id)).status).toBe("succeeded");
	});

	it("the whole rental is billed per backend: boot and idle time show beside what the jobs carry", async () => {
		await faults("vf-rent", {});
		await putVast("vf-rent", { idle_destroy_s: 1 });
		const id = await startJob("vf-rent");
		const job = await stepUntil(id, (j) => j.status === "succeeded", 25);
		await runInDurableObject(env.BACKENDS.getByName("vf-rent"), (_instance, state) => {
			state.storage.sql.exec(
				"UPDATE meta SET value = json_set(value, '$.last_used_at', json_extract(value, '$.last_used_at') - 2000) WHERE key = 'vast'",
			);
		});
		await runDurableObjectAlarm(env.BACKENDS.getByName("vf-rent"));
		const row = await env.DB.prepare(
			"SELECT started_at, ready_at, ended_at, end_reason FROM vast_rentals WHERE backend_name = 'vf-rent'",
		).first<{ started_at: string; ready_at: string | null; ended_at: string | null; end_reason: string }>();
		expect(row?.ready_at).not.toBeNull();
		expect(row?.end_reason).toBe("idle");
		// A rental of 100 s, 70 of them booting (moved back in D1 instead of waiting).
		const ended = Date.parse(row?.ended_at ?? "");
		await env.DB.prepare("UPDATE vast_rentals SET started_at = ?, ready_at = ? WHERE backend_name = 'vf-rent'")
			.bind(new Date(ended - 100_000).toISOString(), new Date(ended - 30_000).toISOString())
			.run();
		const usage = (await (await call("/v1/admin/usage", { headers: ADMIN })).json()) as {
			rentals: Record<string, number | string>[];
		};
		const rental = usage.rentals.find((r) => r.backend_name === "vf-rent");
		// $0.21/h for 100 s = $0.005833; the job carried 4.2 s of it.
		expect(rental).toMatchObject({ instances: 1, billed_seconds: 100, boot_seconds: 70 });
		expect(rental?.billed_usd).toBeCloseTo(0.005833, 6);
		expect(rental?.jobs_cost_usd).toBe(job.cost?.usd);
		expect(rental?.unattributed_usd).toBeCloseTo(0.005833 - (job.cost?.usd ?? 0), 6);
	});

	it("an instance is ready only once ComfyUI lists every model file: no job is sent while they download", async () => {
		await faults("vf-late", {});
		await putVast("vf-late", { onstart: "echo #models-late" });
		const id = await startJob("vf-late");
		const job = await stepUntil(id, (j) => j.status === "succeeded", 25);
		const retries = (await history(id)).filter((h) => h.event === "retry").map((h) => h.detail ?? "");
		// ComfyUI answered twice with its model folders empty: the job waited, then ran once.
		expect(retries.filter((d) => d.includes("is fetching its model files (0 of 6 present)"))).toHaveLength(2);
		expect(job.attempts).toBe(1);
	});
});
