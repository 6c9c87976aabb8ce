/**
 * TEST DOUBLE: an emulator of RunPod Serverless's queue API
 * (https://docs.runpod.io/serverless/endpoints/operation-reference, .../job-states, .../send-requests), run in Node
 * by the vitest global setup. Base URL `{url}/v2/{endpoint_id}`; `Authorization: Bearer <key>` (401 otherwise);
 * an unknown endpoint id answers 404. Routes: `POST /run` ({input, webhook?, policy?} → {id, status: IN_QUEUE}),
 * `GET /status/{id}` (the job object: id, status, delayTime, executionTime, output | error), `POST /cancel/{id}`,
 * `GET /health` ({jobs:{completed,failed,inProgress,inQueue,retried}, workers:{idle,running}}).
 *
 * Each job moves one step per `/status` call (deterministic for tests that step the JobDO alarm), or per
 * `POST /_control/jobs/{id}/advance` (the job running "in the background" while nobody polls):
 *   IN_QUEUE → IN_PROGRESS {progress: downloading} → (transfers relayed, as in the pod emulator) IN_PROGRESS
 *   {progress: sampling 60%} → COMPLETED {video: {size, sha256, …}}.
 * On reaching a terminal state the job's webhook is due: RunPod POSTs the job object (echoing `input`) once. The
 * Worker's URL is not reachable from Node, so deliveries are queued and the test takes them with
 * `POST /_control/webhooks/take` and performs them through the Worker.
 *
 * Faults, per job, from `#emu:NAME[=VALUE][*COUNT]` tokens in `input.params.prompt` (as in the pod emulator):
 *   run=503|500|429|401|400|timeout   /run answers that (retry-after=N adds Retry-After)
 *   status=502|500|429|timeout        /status answers that
 *   vanish                             /status answers 404 and the job is gone (ttl or retention passed)
 *   slow=N                             stays IN_QUEUE for N more steps (a cold start)
 *   fail=TEXT                          FAILED with `error: "TEXT"` (a handler's `{"error": …}`)
 *   crash                              FAILED with the SDK's JSON-string error of an uncaught exception
 *   timedout                           TIMED_OUT (execution timeout or queue expiry)
 *   nooutput                           COMPLETED without `output` (a rejected result POST)
 *   inline                             no transfers; COMPLETED with `output.video_base64` (older handlers)
 *   manual                             `/status` does not move the job; only `advance` does
 *   webhook=lost | webhook=twice       the webhook is never sent, or sent twice
 *   size=N                             the video is N bytes
 *   truncate | corrupt                 direct mode: the upload breaks, the job still reports the intact video
 *                                      (see ../direct-transfers.ts)
 * Running against a reachable Worker (`wrangler dev`), `transfers: "direct"` makes the emulator perform the GETs
 * and the PUT itself, `webhooks: "deliver"` POSTs each webhook to its URL as RunPod does (a failed one retried
 * twice, `webhookRetryMs` apart), `tickMs` moves every live job one step per tick (a worker running on its own; a
 * `/status` call then only reports), and `videoSeed: "prompt"` makes the video `fakeVideo(prompt, size)`.
 * Whole endpoints: `PUT /_control/endpoints/{id}` `{run?: STATUS}` adds an endpoint (another id on the same
 * account) whose every `/run` answers STATUS when given (a failing backend, for routing tests);
 * `GET` on it shows `{run, runs}` (how many `/run` calls it got).
 */
import { downloadInputs, postWebhook, putVideo } from "../direct-transfers";
import { type Json, type NodeRequest, type NodeResponse, readBody, sendJson, serveOnLoopback } from "../loopback-http";
import { fakeVideo } from "../pod/server";

export interface RunpodEmulator {
	/** The `base_url` to configure (`…/v2`). */
	url: string;
	apiKey: string;
	endpointId: string;
	/** How many times each fault was served (by directive name), and `webhook.sent` / `webhook.failed`. */
	injected(): Record<string, number>;
	close(): Promise<void>;
}

export interface RunpodEmulatorOptions {
	apiKey?: string;
	endpointId?: string;
	/** `relay` (default): the test performs the transfers; `direct`: the emulator does (see the file comment). */
	transfers?: "relay" | "direct";
	/** `queue` (default): the test takes the webhooks; `deliver`: the emulator POSTs them. */
	webhooks?: "queue" | "deliver";
	/** RunPod waits 10 s between webhook attempts. */
	webhookRetryMs?: number;
	/** Clock mode: every live job moves one step each `tickMs`. */
	tickMs?: number;
	videoSeed?: "job" | "prompt";
}

type Status = "IN_QUEUE" | "IN_PROGRESS" | "COMPLETED" | "FAILED" | "CANCELLED" | "TIMED_OUT";
const TERMINAL: Status[] = ["COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"];

interface Job {
	id: string;
	input: Json;
	prompt: string;
	webhook?: string;
	policy?: unknown;
	status: Status;
	stage: "queued" | "downloading" | "sampling" | "done";
	steps: number;
	statusCalls: number;
	transfers: "pending" | "ok" | string;
	video: Uint8Array;
	/** A step is running (clock mode: a tick must not start another on the same job). */
	busy?: boolean;
}

const DIRECTIVE = /#emu:([a-z-]+)(?:=([A-Za-z0-9_.:-]+))?(?:\*(\d+))?/g;
const directives = (prompt: string) =>
	[...prompt.matchAll(DIRECTIVE)].map((m) => ({ name: m[1] ?? "", value: m[2], count: m[3] ? Number(m[3]) : 1 }));

const hex = (b: ArrayBuffer) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, "0")).join("");

function base64(bytes: Uint8Array): string {
	let bin = "";
	for (const b of bytes) bin += String.fromCharCode(b);
	return btoa(bin);
}

export async function startRunpodEmulator(options: RunpodEmulatorOptions = {}): Promise<RunpodEmulator> {
	const apiKey = options.apiKey ?? "rp-emulator-key";
	const endpointId = options.endpointId ?? "ep-emulator";
	const jobs = new Map<string, Job>();
	const spent = new Map<string, number>();
	const webhooks: { url: string; body: Json }[] = [];
	/** Endpoints this account has; `run` makes every `/run` answer that status (a failing endpoint). */
	const endpoints = new Map<string, { run?: number; runs: number }>([[endpointId, { runs: 0 }]]);
	const stats = { completed: 0, failed: 0, retried: 0 };
	const calls = { run: 0, status: 0, cancel: 0, health: 0 };
	const served = new Map<string, number>();
	const count = (name: string) => served.set(name, (served.get(name) ?? 0) + 1);

	function fault(prompt: string, name: string) {
		const d = directives(prompt).find((x) => x.name === name);
		if (!d) return undefined;
		const key = `${prompt}\u0000${name}`;
		const used = spent.get(key) ?? 0;
		if (used >= d.count) return undefined;
		spent.set(key, used + 1);
		count(d.value === undefined ? name : `${name}=${d.value}`);
		return d;
	}
	const option = (prompt: string, name: string) => directives(prompt).find((x) => x.name === name);

	const send = sendJson;
	function httpFault(res: NodeResponse, d: { value?: string } | undefined, prompt: string): boolean {
		if (!d) return false;
		if (d.value === "timeout") return true;
		const status = Number(d.value ?? 503);
		const ra = option(prompt, "retry-after")?.value;
		send(res, status, { error: `injected ${status}` }, ra ? { "retry-after": ra } : {});
		return true;
	}

	async function jobObject(job: Job): Promise<Json> {
		const base: Json = { id: job.id, status: job.status, delayTime: 1200, workerId: "emu-worker-1" };
		switch (job.status) {
			case "IN_QUEUE":
			case "CANCELLED":
				return base;
			case "IN_PROGRESS":
				return {
					...base,
					output: {
						progress:
							job.stage === "downloading"
								? { stage: "downloading", percent: 5, message: "fetching inputs" }
								: { stage: "sampling", percent: 60, message: "step 3/4" },
					},
				};
			case "TIMED_OUT":
				return { ...base, executionTime: 600_000 };
			case "FAILED": {
				const text = option(job.prompt, "fail")?.value;
				if (text) return { ...base, executionTime: 800, error: text };
				if (job.transfers !== "ok" && job.transfers !== "pending") {
					return {
						...base,
						executionTime: 800,
						error: JSON.stringify({ code: "output_upload_failed", message: job.transfers }),
					};
				}
				const crash = {
					error_type: "<class 'RuntimeError'>",
					error_message: "CUDA out of memory",
					error_traceback: "Traceback (most recent call last): …",
					hostname: "emu-host",
					worker_id: "emu-worker-1",
					runpod_version: "1.7.0",
				};
				return { ...base, executionTime: 800, error: JSON.stringify(crash) };
			}
			case "COMPLETED": {
				const timing = { ...base, executionTime: 5400 };
				if (option(job.prompt, "nooutput")) return timing;
				const params = (job.input.params ?? {}) as Json;
				const meta = {
					duration_s: Number(params.duration_s ?? 5),
					width: Number(params.width ?? 640),
					height: 640,
					fps: 16,
				};
				if (option(job.prompt, "inline")) return { ...timing, output: { video_base64: base64(job.video), ...meta } };
				const sha = hex(await crypto.subtle.digest("SHA-256", job.video));
				return {
					...timing,
					output: { video: { content_type: "video/mp4", size: job.video.byteLength, sha256: sha, ...meta } },
				};
			}
		}
	}

	/** Moves a job one step; queues its webhook when it becomes terminal. */
	async function advance(job: Job): Promise<void> {
		if (TERMINAL.includes(job.status)) return;
		job.steps += 1;
		const slow = Number(option(job.prompt, "slow")?.value ?? 0);
		if (job.status === "IN_QUEUE") {
			if (job.steps <= slow) return;
			if (slow) count(`slow=${slow}`);
			if (option(job.prompt, "fail") || option(job.prompt, "crash")) {
				job.status = "FAILED";
				count(option(job.prompt, "crash") ? "crash" : "fail");
			} else if (option(job.prompt, "timedout")) {
				job.status = "TIMED_OUT";
				count("timedout");
			} else if (option(job.prompt, "inline") || option(job.prompt, "nooutput")) {
				job.status = "IN_PROGRESS";
				job.stage = "sampling";
			} else {
				job.status = "IN_PROGRESS";
				job.stage = "downloading";
			}
		} else if (job.stage === "downloading") {
			if (job.transfers === "pending" && options.transfers === "direct") await transferDirectly(job);
			if (job.transfers === "pending") return;
			if (job.transfers === "ok") job.stage = "sampling";
			else job.status = "FAILED";
		} else if (job.stage === "sampling") {
			job.status = "COMPLETED";
			job.stage = "done";
		}
		if (!TERMINAL.includes(job.status)) return;
		if (job.status === "COMPLETED") stats.completed += 1;
		else stats.failed += 1;
		const mode = option(job.prompt, "webhook")?.value;
		if (mode) count(`webhook=${mode}`);
		if (job.webhook && mode !== "lost") {
			const body = { ...(await jobObject(job)), input: job.input, webhook: job.webhook };
			webhooks.push({ url: job.webhook, body });
			if (mode === "twice") webhooks.push({ url: job.webhook, body });
			if (options.webhooks === "deliver") deliverQueued();
		}
	}

	/** Deliver mode: sends every queued webhook in the background, RunPod's retries included. */
	function deliverQueued(): void {
		for (const w of webhooks.splice(0)) {
			void postWebhook(w.url, w.body, options.webhookRetryMs).then((ok) =>
				count(ok ? "webhook.sent" : "webhook.failed"),
			);
		}
	}

	/** Direct mode: the worker's GETs and PUT (with the `truncate` / `corrupt` upload faults). */
	async function transferDirectly(job: Job): Promise<void> {
		const input = job.input as {
			inputs?: Record<string, { url: string }>;
			output?: { put?: { url: string; headers: Record<string, string> } };
		};
		const failedGet = await downloadInputs(input.inputs ?? {});
		if (failedGet) {
			job.transfers = failedGet;
			return;
		}
		const uploadFault = fault(job.prompt, "truncate")
			? "truncate"
			: fault(job.prompt, "corrupt")
				? "corrupt"
				: undefined;
		const status = input.output?.put ? await putVideo(input.output.put, job.video, uploadFault) : null;
		// A broken upload is reported as written: the fault is a worker that lost the error (see direct-transfers.ts).
		const ok = uploadFault !== undefined || (status !== null && status >= 200 && status < 300);
		job.transfers = ok ? "ok" : `PUT: ${status ?? "unreachable"}`;
	}

	function videoFor(id: string, prompt: string): Uint8Array {
		const seed = options.videoSeed === "prompt" ? prompt : id;
		const size = option(prompt, "size")?.value;
		return size ? fakeVideo(seed, Number(size)) : fakeVideo(seed);
	}

	async function handle(req: NodeRequest, res: NodeResponse): Promise<void> {
		const path = new URL(req.url ?? "/", "http://emulator").pathname;
		const text = new TextDecoder().decode(await readBody(req));
		const json = (): Json => {
			try {
				return JSON.parse(text) as Json;
			} catch {
				return {};
			}
		};
		const control = /^\/_control\/jobs\/([^/]+)(\/video|\/relayed|\/advance)?$/.exec(path);
		if (control) {
			const job = jobs.get(decodeURIComponent(control[1] ?? ""));
			if (!job) return send(res, 404, { error: "job not found" });
			const sub = control[2];
			if (!sub) {
				const { video: _v, ...rest } = job;
				return send(res, 200, {
					...rest,
					awaiting_transfers: job.stage === "downloading" && job.transfers === "pending",
				});
			}
			if (sub === "/video") {
				res.writeHead(200, { "content-type": "video/mp4" });
				return res.end(job.video);
			}
			if (sub === "/advance") {
				await advance(job);
				return send(res, 200, { status: job.status, stage: job.stage });
			}
			const report = json() as { downloads?: Record<string, { status: number }>; upload?: { status: number } };
			const bad = Object.entries(report.downloads ?? {}).find(([, r]) => r.status !== 200);
			if (bad) job.transfers = `GET ${bad[0]}: ${bad[1].status}`;
			else if (!report.upload || report.upload.status > 299) job.transfers = `PUT: ${report.upload?.status}`;
			else job.transfers = "ok";
			return send(res, 200, { ok: true });
		}
		if (path === "/_control/webhooks/take") {
			// `?for=TEXT` takes only the deliveries whose URL contains TEXT (one test's job), leaving the others.
			const only = new URL(req.url ?? "/", "http://emulator").searchParams.get("for") ?? "";
			const taken = webhooks.filter((w) => w.url.includes(only));
			for (const w of taken) webhooks.splice(webhooks.indexOf(w), 1);
			return send(res, 200, { deliveries: taken });
		}
		if (path === "/_control/calls") return send(res, 200, calls);
		const ep = /^\/_control\/endpoints\/([A-Za-z0-9_-]+)$/.exec(path);
		if (ep && req.method === "PUT") {
			const body = json() as { run?: number };
			endpoints.set(ep[1] ?? "", { run: body.run, runs: endpoints.get(ep[1] ?? "")?.runs ?? 0 });
			return send(res, 200, { ok: true });
		}
		if (ep) return send(res, 200, endpoints.get(ep[1] ?? "") ?? null);

		const m = /^\/v2\/([^/]+)(\/.*)$/.exec(path);
		if (!m) return send(res, 404, { error: "not found" });
		const auth = String(req.headers.authorization ?? "");
		if (auth !== `Bearer ${apiKey}` && auth !== apiKey) return send(res, 401, { error: "Unauthorized" });
		const endpoint = endpoints.get(m[1] ?? "");
		if (!endpoint) return send(res, 404, { error: "endpoint not found" });
		const op = m[2] ?? "";
		const status = /^\/status\/([^/]+)$/.exec(op);
		const cancel = /^\/cancel\/([^/]+)$/.exec(op);

		if (req.method === "POST" && op === "/run") {
			calls.run += 1;
			endpoint.runs += 1;
			if (endpoint.run) return send(res, endpoint.run, { error: `endpoint fault ${endpoint.run}` });
			const body = json();
			const input = (body.input ?? {}) as Json;
			const prompt = String(((input.params ?? {}) as Json).prompt ?? "");
			if (httpFault(res, fault(prompt, "run"), prompt)) return;
			if (typeof body.input !== "object") return send(res, 400, { error: "input is required" });
			const id = `${crypto.randomUUID()}-u1`;
			jobs.set(id, {
				id,
				input,
				prompt,
				webhook: typeof body.webhook === "string" ? body.webhook : undefined,
				policy: body.policy,
				status: "IN_QUEUE",
				stage: "queued",
				steps: 0,
				statusCalls: 0,
				transfers: "pending",
				video: videoFor(id, prompt),
			});
			return send(res, 200, { id, status: "IN_QUEUE" });
		}
		if (req.method === "GET" && status) {
			calls.status += 1;
			const job = jobs.get(decodeURIComponent(status[1] ?? ""));
			if (!job) return send(res, 404, { error: "job not found" });
			if (httpFault(res, fault(job.prompt, "status"), job.prompt)) return;
			if (fault(job.prompt, "vanish")) {
				jobs.delete(job.id);
				return send(res, 404, { error: "job not found" });
			}
			job.statusCalls += 1;
			const answer = await jobObject(job);
			if (!option(job.prompt, "manual") && !options.tickMs) await advance(job);
			return send(res, 200, answer);
		}
		if (req.method === "POST" && cancel) {
			calls.cancel += 1;
			const job = jobs.get(decodeURIComponent(cancel[1] ?? ""));
			if (!job) return send(res, 404, { error: "job not found" });
			if (!TERMINAL.includes(job.status)) job.status = "CANCELLED";
			return send(res, 200, { id: job.id, status: "CANCELLED" });
		}
		if (req.method === "GET" && op === "/health") {
			calls.health += 1;
			const all = [...jobs.values()];
			return send(res, 200, {
				jobs: {
					...stats,
					inProgress: all.filter((j) => j.status === "IN_PROGRESS").length,
					inQueue: all.filter((j) => j.status === "IN_QUEUE").length,
				},
				workers: { idle: 1, running: all.filter((j) => j.status === "IN_PROGRESS").length },
			});
		}
		return send(res, 404, { error: "not found" });
	}

	const server = await serveOnLoopback(handle);
	const port = server.port;
	const clock = options.tickMs
		? setInterval(() => {
				for (const job of jobs.values()) {
					if (job.busy || TERMINAL.includes(job.status) || option(job.prompt, "manual")) continue;
					job.busy = true;
					void advance(job).finally(() => {
						job.busy = false;
					});
				}
			}, options.tickMs)
		: undefined;
	return {
		url: `http://127.0.0.1:${port}/v2`,
		apiKey,
		endpointId,
		injected: () => Object.fromEntries(served),
		close: () => {
			if (clock !== undefined) clearInterval(clock);
			return server.close();
		},
	};
}
