// The chaos run: CHAOS_JOBS (default 200) jobs through the real local runtime and the pod, RunPod, bare ComfyUI and
// vast.ai emulators, with a seeded mix of backend faults per job (CHAOS_SEED replays one), while the runtime is SIGKILLed
// and restarted twice.
// Every accepted job must reach the terminal state its faults call for, every succeeded video must download
// byte-exact, and no job may be announced succeeded twice. A quarter of the clients follow their job through the
// event stream, reconnecting with Last-Event-ID across the restarts: each must see its terminal status, in order.
import { createHash } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { makePng } from "../e2e/media";
import { type ComfyEmulator, startComfyEmulator } from "../emulators/comfyui/server";
import { fakeVideo, type PodEmulator, startPodEmulator } from "../emulators/pod/server";
import { type RunpodEmulator, startRunpodEmulator } from "../emulators/runpod/server";
import { startVastEmulator, type VastEmulator } from "../emulators/vastai/server";
import { startWebhookReceiver, type WebhookReceiver } from "../emulators/webhook-receiver/server";
import { ResilientClient } from "./client";
import { type FollowResult, followEvents } from "./event-follower";
import { FAULTS, type JobPlan, planJob } from "./faults";
import { seededRng } from "./prng";
import { LocalRuntime } from "./runtime";
import { type StandingView, standingProblems } from "./waiting";

const JOBS = Number(process.env.CHAOS_JOBS ?? 200);
const SEED = Number(process.env.CHAOS_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** Jobs per account: under the default limits (120 jobs/min per key, 50 concurrent per account) with room to spare. */
const JOBS_PER_ACCOUNT = 40;
const CREATE_CONCURRENCY = 8;
/**
 * Every job terminal within this long after the first one was created, restarts included. Runs take 85–220 s here;
 * the margin is for a slower or busier machine, since a passing run never waits for it.
 */
const SETTLE_DEADLINE_MS = Number(process.env.CHAOS_DEADLINE_S ?? 420) * 1000;
const CALL_TIMEOUT_MS = 8000;
const TICK_MS = 400;
/**
 * One ComfyUI server runs one prompt at a time, so its third of the jobs (and the runs a lost answer left running)
 * queue up behind each other: a faster clock keeps that queue from outlasting the deadline on a loaded machine.
 */
const COMFY_TICK_MS = 100;
const TERMINAL = ["succeeded", "failed", "canceled"];
/** Every FOLLOW_EVERY-th job's client follows it through the event stream instead of polling. */
const FOLLOW_EVERY = 4;

interface JobView extends StandingView {
	id: string;
	status: string;
	attempts: number;
	error?: { code: string; message: string };
	output?: { video: { size: number; sha256?: string } };
}

interface Tracked {
	plan: JobPlan;
	account: { key: string; image: string };
	id?: string;
	/** The last state its client saw. */
	view?: JobView;
	createError?: string;
	/** How its event stream went, for the jobs followed that way. */
	followed?: FollowResult<JobView>;
	/** Milliseconds from its creation until its client saw it terminal. */
	tookMs?: number;
	/** What its views said wrong about where it stands (waiting.ts), and the queue reasons they gave. */
	standing: string[];
	reasons: Set<string>;
}

/** Checks a view's `queue` and `eta` (waiting.ts) and keeps it as the job's latest. */
function see(job: Tracked, view: JobView): void {
	job.view = view;
	for (const p of standingProblems(view, job.plan.backend === "vast")) job.standing.push(p);
	if (view.queue) job.reasons.add(view.queue.reason);
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let pod: PodEmulator;
let runpod: RunpodEmulator;
let comfy: ComfyEmulator;
let vast: VastEmulator;
let receiver: WebhookReceiver;
let runtime: LocalRuntime;

beforeAll(async () => {
	console.log(`chaos: seed ${SEED}, ${JOBS} jobs (replay with CHAOS_SEED=${SEED})`);
	pod = await startPodEmulator({ token: "chaos-pod-token", transfers: "direct", tickMs: TICK_MS, videoSeed: "prompt" });
	runpod = await startRunpodEmulator({
		apiKey: "chaos-runpod-key",
		endpointId: "ep-chaos",
		transfers: "direct",
		webhooks: "deliver",
		tickMs: TICK_MS,
		videoSeed: "prompt",
	});
	comfy = await startComfyEmulator({ token: "chaos-comfy-token", tickMs: COMFY_TICK_MS, videoSeed: "prompt" });
	vast = await startVastEmulator({
		apiKey: "chaos-vast-key",
		comfyPort: Number(new URL(comfy.url).port),
		addComfyToken: (t, o) => comfy.addToken(t, o),
	});
	receiver = await startWebhookReceiver();
	runtime = await LocalRuntime.start({ ALLOW_LOOPBACK_WEBHOOKS: "true" });
});

afterAll(async () => {
	await runtime?.stop();
	await Promise.all([pod?.close(), runpod?.close(), comfy?.close(), vast?.close(), receiver?.close()]);
});

/**
 * The vast.ai backends, each over its own emulator scope: `chaos-vast` (offers rentable once: simultaneous jobs
 * must share one rental), `-lost` (its first instance exits 4 s after its boot, its port closed under the jobs on it), `-key` (the key refused) and `-none`
 * (no offer, and no wait for one).
 */
const VAST_VARIANTS: Record<string, { faults: Record<string, unknown>; config?: Record<string, unknown> }> = {
	"chaos-vast": { faults: { single_use_offers: true } },
	"chaos-vast-lost": { faults: { first_dies_after_ms: 4000 } },
	"chaos-vast-key": { faults: { refuse_key: true } },
	"chaos-vast-none": { faults: { no_offers: true }, config: { capacity_wait_s: 0 } },
};

/**
 * Registers the emulators as backends. The call timeout is short, so a `timeout` fault costs seconds, yet not so
 * short that a loaded machine's slow answer reads as a timeout (and trips the backend's circuit breaker).
 */
async function registerBackends(client: ResilientClient, until: number): Promise<void> {
	const admin = { authorization: `Bearer ${runtime.adminToken}` };
	const backends = {
		"chaos-pod": { kind: "pod", config: { url: pod.url, token: pod.token, timeout_ms: CALL_TIMEOUT_MS } },
		"chaos-runpod": {
			kind: "runpod",
			config: {
				endpoint_id: runpod.endpointId,
				api_key: runpod.apiKey,
				base_url: runpod.url,
				timeout_ms: CALL_TIMEOUT_MS,
			},
		},
		// An 80 GB card, which holds the fp8 Wan model (routing reads the GPU a health check reports).
		"chaos-comfy": {
			kind: "comfyui",
			config: { url: `${comfy.url}/h100`, token: comfy.token, timeout_ms: CALL_TIMEOUT_MS },
		},
		...Object.fromEntries(
			Object.entries(VAST_VARIANTS).map(([name, v]) => [
				name,
				{
					kind: "vastai",
					models: ["wan2.2-i2v"],
					config: {
						api_key: `${vast.apiKey}.${name}`,
						base_url: vast.url,
						max_dph_usd: 0.5,
						min_reliability: 0.99,
						idle_destroy_s: 3600,
						...v.config,
					},
				},
			]),
		),
	};
	for (const [name, v] of Object.entries(VAST_VARIANTS)) {
		await fetch(`${vast.url}/_control/scopes/${name}`, { method: "PUT", body: JSON.stringify(v.faults) });
	}
	for (const [name, body] of Object.entries(backends)) {
		await client.json(
			"PUT",
			`/v1/admin/backends/${name}`,
			{ headers: admin, body: { ...body, max_concurrency: 1000 }, until },
			[200, 201],
		);
	}
}

/** One key per account, and one uploaded image per account, reused by all its jobs. */
async function makeAccounts(client: ResilientClient, count: number, until: number) {
	const admin = { authorization: `Bearer ${runtime.adminToken}` };
	const png = makePng(64, 64);
	const accounts: { key: string; image: string }[] = [];
	for (let i = 0; i < count; i++) {
		const { key } = await client.json<{ key: string }>(
			"POST",
			"/v1/admin/keys",
			{ headers: admin, body: { name: `chaos-${i}`, account: `acct_chaos_${SEED}_${i}` }, until },
			[201],
		);
		const created = await client.json<{ id: string; upload: { url: string; headers: Record<string, string> } }>(
			"POST",
			"/v1/uploads",
			{ key, body: { filename: "still.png", content_type: "image/png", size: png.length, sha256: sha256(png) }, until },
			[201],
		);
		const put = await fetch(created.upload.url, { method: "PUT", headers: created.upload.headers, body: png });
		expect(put.ok, `upload PUT: ${put.status}`).toBe(true);
		await client.json("POST", `/v1/uploads/${created.id}/complete`, { key, until }, [200]);
		accounts.push({ key, image: created.id });
	}
	return accounts;
}

/** A limit on how many of `tasks` run at once. */
function gate(limit: number) {
	let active = 0;
	const queue: (() => void)[] = [];
	return async <T>(task: () => Promise<T>): Promise<T> => {
		if (active >= limit) await new Promise<void>((r) => queue.push(r));
		active++;
		try {
			return await task();
		} finally {
			active--;
			queue.shift()?.();
		}
	};
}

/** Creates the job (retried with one Idempotency-Key through outages and 429s), then polls it to a terminal state. */
async function driveJob(client: ResilientClient, job: Tracked, creating: ReturnType<typeof gate>, until: number) {
	const body = {
		model: "wan2.2-i2v",
		input: { image: job.account.image, prompt: job.plan.prompt, resolution: "256x256" },
		backend: `chaos-${job.plan.backend}${job.plan.variant ? `-${job.plan.variant}` : ""}`,
		webhook: { url: `${receiver.url}/hooks/chaos-${SEED}-${job.plan.index}` },
	};
	try {
		const created = await creating(() =>
			client.json<JobView>(
				"POST",
				"/v1/jobs",
				{ key: job.account.key, body, headers: { "idempotency-key": `chaos-${SEED}-${job.plan.index}` }, until },
				[200, 202],
			),
		);
		job.id = created.id;
		see(job, created);
	} catch (err) {
		job.createError = String(err);
		return;
	}
	const createdAt = Date.now();
	const settled = () => {
		if (TERMINAL.includes(job.view?.status ?? "")) job.tookMs = Date.now() - createdAt;
	};
	if (job.plan.index % FOLLOW_EVERY === 0) {
		// Like an EventSource: reconnects with Last-Event-ID through the restarts, stops at the terminal status.
		job.followed = await followEvents<JobView>(runtime.url, job.account.key, job.id, until);
		if (job.followed.view) see(job, job.followed.view);
		if (TERMINAL.includes(job.view?.status ?? "")) {
			// What the stream ended on is what the job says.
			const read = await client.json<JobView>("GET", `/v1/jobs/${job.id}`, { key: job.account.key, until }, [200]);
			if (read.status !== job.view?.status || read.error?.code !== job.view?.error?.code) {
				job.followed.problems.push(`the stream ended on ${job.view?.status}, GET says ${read.status}`);
			}
			return settled();
		}
		// The stream gave up (its problems say why): polling below still settles the job.
	}
	const started = Date.now();
	while (!TERMINAL.includes(job.view?.status ?? "") && Date.now() < until) {
		// Like a sensible client: quick polls at first, then about every 3 s.
		await sleep(Math.min(3000, 1000 + (Date.now() - started) / 5) * (0.75 + Math.random() / 2));
		try {
			see(job, await client.json<JobView>("GET", `/v1/jobs/${job.id}`, { key: job.account.key, until }, [200]));
		} catch {
			// Past the deadline: reported as stuck below.
		}
	}
	settled();
}

interface Delivery {
	id: string;
	type: string;
	jobId: string;
}

async function webhooksOf(index: number): Promise<Delivery[]> {
	const res = await fetch(`${receiver.url}/_control/received?path=/hooks/chaos-${SEED}-${index}`);
	const { requests } = (await res.json()) as { requests: { headers: Record<string, string>; body: string }[] };
	return requests.map((r) => {
		const body = JSON.parse(r.body) as { type: string; data: { id: string } };
		return { id: r.headers["webhook-id"] ?? "", type: body.type, jobId: body.data.id };
	});
}

it(`${JOBS} jobs through faulty backends and two hard restarts`, async () => {
	const t0 = Date.now();
	const until = t0 + SETTLE_DEADLINE_MS + 60_000;
	const client = new ResilientClient(runtime.url, (status, body) =>
		status === 409 ? body.includes("idempotency_in_flight") : true,
	);
	await registerBackends(client, until);
	const accounts = await makeAccounts(client, Math.ceil(JOBS / JOBS_PER_ACCOUNT), until);

	const rng = seededRng(SEED);
	const jobs: Tracked[] = Array.from({ length: JOBS }, (_, i) => ({
		plan: planJob(rng, i, String(SEED)),
		account: accounts[i % accounts.length] as { key: string; image: string },
		standing: [],
		reasons: new Set<string>(),
	}));
	const creating = gate(CREATE_CONCURRENCY);
	const settleBy = Date.now() + SETTLE_DEADLINE_MS;
	const driving = Promise.all(jobs.map((job) => driveJob(client, job, creating, settleBy)));

	// The restarts: the first while jobs are still being created, the second once the survivors are back at work.
	const inFlight = () => jobs.filter((j) => j.id && !TERMINAL.includes(j.view?.status ?? "")).length;
	const accepted = () => jobs.filter((j) => j.id).length;
	const chaos = (async () => {
		while (accepted() < JOBS * 0.35 && Date.now() < settleBy) await sleep(200);
		const first = await runtime.restart(inFlight());
		console.log(`chaos: restart 1 with ${first.inFlight} jobs in flight; down ${first.downMs} ms`);
		await sleep(8000);
		const second = await runtime.restart(inFlight());
		console.log(`chaos: restart 2 with ${second.inFlight} jobs in flight; down ${second.downMs} ms`);
	})();
	const progress = setInterval(() => {
		const done = jobs.filter((j) => TERMINAL.includes(j.view?.status ?? "")).length;
		console.log(`chaos: +${((Date.now() - t0) / 1000).toFixed(0)} s: ${accepted()} accepted, ${done} terminal`);
	}, 10_000);
	await Promise.all([driving, chaos]).finally(() => clearInterval(progress));

	// Every accepted job terminal, as its client sees it.
	const label = (j: Tracked) =>
		`${j.id ?? "(no id)"} (#${j.plan.index} on ${j.plan.backend}, ${j.plan.faults.join("+") || "no faults"})`;
	const notAccepted = jobs.filter((j) => !j.id).map((j) => `${label(j)}: ${j.createError}`);
	const stuck = jobs
		.filter((j) => j.id && !TERMINAL.includes(j.view?.status ?? ""))
		.map((j) => `${label(j)}: ${j.view?.status}`);

	// The outcome each job's faults call for.
	const wrongOutcome = jobs
		.filter((j) => j.id && TERMINAL.includes(j.view?.status ?? ""))
		.filter((j) =>
			j.plan.expectCode
				? j.view?.status !== "failed" || j.view.error?.code !== j.plan.expectCode
				: j.view?.status !== "succeeded",
		)
		.map(
			(j) =>
				`${label(j)}: ${j.view?.status} ${j.view?.error ? `${j.view.error.code}: ${j.view.error.message}` : ""}, ` +
				`expected ${j.plan.expectCode ?? "succeeded"}`,
		);

	// Every succeeded video byte-exact: what the emulated worker rendered for that prompt.
	const badVideos: string[] = [];
	for (const j of jobs.filter((x) => x.view?.status === "succeeded")) {
		const expected = fakeVideo(j.plan.prompt, j.plan.videoSize);
		const res = await client.request("GET", `/v1/jobs/${j.id}/video`, { key: j.account.key, until });
		const bytes = new Uint8Array(await res.arrayBuffer());
		if (res.status !== 200 || bytes.byteLength !== expected.byteLength || sha256(bytes) !== sha256(expected)) {
			badVideos.push(`${label(j)}: HTTP ${res.status}, ${bytes.byteLength} bytes (expected ${expected.byteLength})`);
		}
		if (j.view?.output?.video.sha256 !== sha256(expected)) {
			badVideos.push(`${label(j)}: the job reports sha256 ${j.view?.output?.video.sha256}`);
		}
	}

	// Webhooks: the terminal event of every job arrives (a retry may repeat a message, with its webhook-id), and no
	// job is announced succeeded twice, or succeeded when it failed.
	const finished = jobs.filter((j) => TERMINAL.includes(j.view?.status ?? ""));
	const webhookDeadline = Date.now() + 60_000;
	let deliveries: Delivery[][] = [];
	for (;;) {
		deliveries = await Promise.all(finished.map((j) => webhooksOf(j.plan.index)));
		const missing = finished.filter((j, i) => !deliveries[i]?.some((d) => d.type === `job.${j.view?.status}`));
		if (missing.length === 0 || Date.now() > webhookDeadline) break;
		await sleep(1000);
	}
	const webhookProblems: string[] = [];
	let redeliveries = 0;
	finished.forEach((j, i) => {
		const got = deliveries[i] ?? [];
		const succeeded = new Set(got.filter((d) => d.type === "job.succeeded").map((d) => d.id));
		redeliveries += got.length - new Set(got.map((d) => d.id)).size;
		if (got.some((d) => d.jobId !== j.id)) webhookProblems.push(`${label(j)}: a webhook about another job`);
		if (succeeded.size > 1) webhookProblems.push(`${label(j)}: announced succeeded ${succeeded.size} times`);
		if (j.view?.status !== "succeeded" && succeeded.size > 0) {
			webhookProblems.push(`${label(j)}: ${j.view?.status}, yet announced succeeded`);
		}
		if (!got.some((d) => d.type === `job.${j.view?.status}`)) {
			webhookProblems.push(`${label(j)}: no job.${j.view?.status} webhook`);
		}
	});

	// The tally.
	const byOutcome: Record<string, number> = {};
	const faultsPlanned: Record<string, number> = {};
	const perBackend: Record<string, number> = {};
	for (const j of jobs) {
		perBackend[j.plan.backend] = (perBackend[j.plan.backend] ?? 0) + 1;
		const key = j.view?.status === "failed" ? `failed:${j.view.error?.code}` : String(j.view?.status ?? "not accepted");
		byOutcome[key] = (byOutcome[key] ?? 0) + 1;
		for (const f of j.plan.faults) faultsPlanned[f] = (faultsPlanned[f] ?? 0) + 1;
	}
	const resubmitted = jobs.filter((j) => (j.view?.attempts ?? 0) > 1).length;
	const rentals = (await (await fetch(`${vast.url}/_control/instances`)).json()) as {
		label: string;
		destroyed: boolean;
	}[];
	const rentedBy = (name: string) => rentals.filter((r) => r.label === `reelgate:${name}`);
	const followed = jobs.filter((j) => j.followed);
	const standing = jobs.flatMap((j) => j.standing.slice(0, 3).map((p) => `${label(j)}: ${p}`));
	const reasonsByFault: Record<string, Record<string, number>> = {};
	for (const j of jobs) {
		for (const f of j.plan.faults.length > 0 ? j.plan.faults : ["none"]) {
			const tally = reasonsByFault[f] ?? {};
			for (const r of j.reasons) tally[r] = (tally[r] ?? 0) + 1;
			reasonsByFault[f] = tally;
		}
	}
	const streamProblems = followed.flatMap((j) => (j.followed?.problems ?? []).map((p) => `${label(j)}: ${p}`));
	const sum = (f: (r: FollowResult<JobView>) => number) =>
		followed.reduce((n, j) => n + (j.followed ? f(j.followed) : 0), 0);
	console.log(
		[
			`chaos: seed ${SEED}, ${JOBS} jobs in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
			`  final status: ${JSON.stringify(byOutcome)}; jobs per backend: ${JSON.stringify(perBackend)}`,
			`  faults planned (jobs): ${JSON.stringify(faultsPlanned)}; ${jobs.filter((j) => j.plan.faults.length === 0).length} jobs without faults`,
			`  faults served by the pod emulator: ${JSON.stringify(pod.injected())}`,
			`  faults served by the RunPod emulator: ${JSON.stringify(runpod.injected())}`,
			`  faults served by the ComfyUI emulator: ${JSON.stringify(comfy.injected())}`,
			`  vast.ai instances rented: ${Object.keys(VAST_VARIANTS)
				.map((n) => `${n} ${rentedBy(n).length} (${rentedBy(n).filter((r) => !r.destroyed).length} live)`)
				.join(", ")}`,
			`  restarts: ${runtime.restarts.map((r, i) => `#${i + 1} ${r.inFlight} in flight, down ${r.downMs} ms`).join("; ")}`,
			`  client retries: ${JSON.stringify(client.tally.retries)}; 5xx answers other than 503: ${client.tally.serverErrors.length}`,
			`  jobs resubmitted by the Worker (attempts > 1): ${resubmitted}; webhook redeliveries (same webhook-id): ${redeliveries}`,
			`  queue reasons seen, jobs per fault: ${JSON.stringify(reasonsByFault)}`,
			`  followed by event stream: ${followed.length} jobs, ${sum((r) => r.events)} events, ${sum((r) => r.resumes)} streams resumed with Last-Event-ID, ${sum((r) => r.refused)} connection attempts refused or broken`,
		].join("\n"),
	);
	// The story of the stuck jobs, from the runtime's log (the job's own lines, not the API requests about it).
	const log = runtime.output().split("\n");
	for (const j of jobs.filter((x) => x.id && !TERMINAL.includes(x.view?.status ?? "")).slice(0, 3)) {
		const lines = log.filter((l) => l.includes(j.id ?? "") && !l.includes("/v1/jobs/")).slice(-25);
		console.log(`  log of ${label(j)}, stuck:\n    ${lines.join("\n    ")}`);
	}
	// The slowest jobs with their outcome: a run that nears the deadline says which faults held it up.
	const slowest = jobs.filter((j) => j.tookMs !== undefined).sort((x, y) => (y.tookMs ?? 0) - (x.tookMs ?? 0));
	for (const j of slowest.slice(0, 8)) {
		const outcome = j.view?.status === "failed" ? `failed:${j.view.error?.code}` : j.view?.status;
		console.log(`  slow: ${label(j)}, ${outcome} after ${((j.tookMs ?? 0) / 1000).toFixed(0)} s`);
	}
	for (const e of client.tally.serverErrors.slice(0, 10))
		console.log(`  5xx: ${e.method} ${e.path} ${e.status} ${e.body}`);

	expect(notAccepted, "jobs never accepted").toEqual([]);
	expect(stuck, "jobs not terminal by the deadline").toEqual([]);
	expect(wrongOutcome, "jobs whose final state does not match their faults").toEqual([]);
	expect(badVideos, "succeeded jobs whose video is not the one rendered").toEqual([]);
	expect(webhookProblems, "webhook problems").toEqual([]);
	expect(streamProblems, "event streams that broke their contract").toEqual([]);
	expect(standing, "views whose queue or eta contradict the job's state").toEqual([]);
	// A submit whose answer was lost is followed on the retry, never queued on the GPU a second time.
	expect(comfy.queuedTwice(), "ComfyUI prompts queued twice").toEqual([]);
	// A refused key or an empty market rents nothing; the shared backend never holds two live instances at once.
	expect(rentedBy("chaos-vast-key"), "instances rented with a refused key").toEqual([]);
	expect(rentedBy("chaos-vast-none"), "instances rented with no offer").toEqual([]);
	expect(rentedBy("chaos-vast").filter((r) => !r.destroyed).length, "live chaos-vast instances").toBeLessThanOrEqual(1);
	// 503 is the runtime coming back up (retried by the client); any other 5xx is the API failing a client.
	expect(client.tally.serverErrors, "5xx answers other than 503").toEqual([]);
	expect(runtime.restarts.length).toBeGreaterThanOrEqual(2);
	expect(
		runtime.restarts.every((r) => r.inFlight > 0),
		"each restart hit jobs in flight",
	).toBe(true);
	// Every kind of fault was exercised (the first jobs take one kind each).
	if (JOBS >= FAULTS.length) expect(Object.keys(faultsPlanned).sort()).toEqual(FAULTS.map((f) => f.name).sort());
});
