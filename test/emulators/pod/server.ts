/**
 * TEST DOUBLE: an emulator of the GPU worker in pod mode (docs/gpu-job-protocol.md), run in Node by the
 * vitest global setup. It speaks `/run`, `/status/{id}`, `/cancel/{id}`, `/health` with bearer auth, and moves
 * each job one step per `/status` call (so tests that step the JobDO's alarm see a deterministic sequence):
 *
 *   status #1 → IN_QUEUE; #2 → IN_PROGRESS {stage: downloading}; once the transfers are done → IN_PROGRESS
 *   {stage: sampling, percent: 60}; next → COMPLETED with the size and sha256 of the bytes it "rendered".
 *
 * Transfers. A real worker GETs its inputs from the signed URLs and PUTs the video to the signed output URL.
 * In the workerd tests those URLs point at `PUBLIC_URL` (http://reelgate.test), which only exists inside the
 * test's `exports.default.fetch`; Node cannot reach it. So by default (`transfers: "relay"`) the emulator hands
 * the transfers to the test: `GET /_control/jobs/{id}` shows the input (with the signed URLs) and whether the
 * job awaits its transfers, `GET /_control/jobs/{id}/video` gives the bytes to upload, and the test performs the
 * GETs and the PUT through the Worker, then reports the HTTP statuses with `POST /_control/jobs/{id}/relayed`
 * `{ downloads: { image: {status}, audio?: {status} }, upload: {status} }`. The bytes and the size/sha256 the
 * emulator reports are its own, so the Worker's verification is tested honestly. With `transfers: "direct"`
 * (a reachable Worker, e.g. `wrangler dev`) the emulator performs the same requests itself.
 *
 * Faults are per job, from directives in `input.params.prompt` (tokens `#emu:NAME[=VALUE][*COUNT]`). COUNT
 * (default 1) is how many calls the fault hits, counted per prompt text across submissions, so a resubmitted
 * job with the same prompt is not hit again once spent. Give each test a unique prompt.
 *   #emu:run=503*2      /run answers 503 (also 500, or 429; add `#emu:retry-after=N` for its Retry-After)
 *   #emu:run=timeout    /run never answers (the caller's timeout fires)
 *   #emu:status=502     /status answers 502 (also 500, 429 with retry-after, or `timeout`)
 *   #emu:vanish         /status answers 404 and the job is forgotten (a lost job)
 *   #emu:fail=CODE      the job goes FAILED with `{code: CODE, message}` (as JSON text) instead of starting
 *   #emu:badsha         the job COMPLETES reporting a wrong sha256
 *   #emu:run=400        /run answers 400 (a permanent refusal)
 *   #emu:multipart=N    the video is N bytes + 1 MiB, written in parts of N bytes through the part URLs that
 *                       `output.parts_url` answers (asked with `part_size: N`; R2 wants N >= 5242880), and
 *                       reported with `parts`
 *   #emu:lostpart=K     with multipart: part K is never uploaded, yet reported (with a made-up etag)
 *   #emu:size=N         the video is N bytes (default about 2 KiB); larger than `output.put.max_size`, it goes through
 *                       `output.parts_url` in parts of that size, as the GPU worker sends it
 *   #emu:truncate       direct mode: the PUT is cut off halfway, and the job still COMPLETES reporting the whole video
 *   #emu:corrupt        direct mode: the PUT carries flipped bytes, and the job reports the intact video's sha256
 *                       (both: see ../direct-transfers.ts)
 * Clock mode (`tickMs`): a timer moves every live job one step per tick, as a worker running on its own would, and
 * `/status` only reports; a job then takes about four ticks. `videoSeed: "prompt"` makes the video a function of the
 * prompt (`fakeVideo(prompt, size)`), so a client that knows the prompt knows the bytes to expect.
 * The control API's `upload_plan` says what to upload: `{kind: "put"}` or `{kind: "parts", parts: [{part_number,
 * offset, length, skip}]}`; `/relayed` then takes `upload: {status, parts: [{part_number, etag}]}`.
 */
import { downloadInputs, putVideo } from "../direct-transfers";

/** `output.parts_url` of the job input: a signed POST answering the part URLs for a given size. */
type PartsUrl = { url: string; headers: Record<string, string> };

import { type Json, type NodeRequest, type NodeResponse, readBody, sendJson, serveOnLoopback } from "../loopback-http";

export interface PodEmulatorOptions {
	token?: string;
	transfers?: "relay" | "direct";
	/** Port to listen on; 0 (default) picks a free one. */
	port?: number;
	/** Clock mode: every live job moves one step each `tickMs` (see the file comment); default: per `/status`. */
	tickMs?: number;
	/** What the video's bytes derive from: the emulator's job id (default) or the job's prompt. */
	videoSeed?: "job" | "prompt";
}

export interface PodEmulator {
	url: string;
	token: string;
	/** How many times each fault was served (by directive name), for a test's tally. */
	injected(): Record<string, number>;
	close(): Promise<void>;
}

type EmuStatus = "IN_QUEUE" | "IN_PROGRESS" | "COMPLETED" | "FAILED" | "CANCELLED";

interface EmuJob {
	id: string;
	input: Json;
	prompt: string;
	status: EmuStatus;
	stage: "queued" | "downloading" | "sampling" | "done";
	/** The `policy` of its `/run` request, as sent (the GPU worker honours its `executionTimeout`). */
	policy?: unknown;
	/** When its run began, for its log lines (epoch seconds); unset while queued. */
	loggedAt?: number;
	/** Steps taken: one per `/status` call, or per tick in clock mode. */
	steps: number;
	/** A step is running (clock mode: a tick must not start another on the same job). */
	busy: boolean;
	transfers: "pending" | "ok" | { code: string; message: string };
	video: Uint8Array;
	/** The parts written through the multipart URLs (reported in `output.video.parts`). */
	parts?: { part_number: number; etag: string }[];
	error?: { code: string; message: string };
}

type UploadPlan =
	| { kind: "put" }
	| { kind: "parts"; parts: { part_number: number; offset: number; length: number; skip: boolean }[] };

interface Directive {
	name: string;
	value?: string;
	count: number;
}

const DIRECTIVE = /#emu:([a-z-]+)(?:=([A-Za-z0-9_.:-]+))?(?:\*(\d+))?/g;

function parseDirectives(prompt: string): Directive[] {
	return [...prompt.matchAll(DIRECTIVE)].map((m) => ({
		name: m[1] ?? "",
		value: m[2],
		count: m[3] ? Number(m[3]) : 1,
	}));
}

function hex(bytes: ArrayBuffer): string {
	return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** A small deterministic "MP4": an `ftyp` box and an `mdat` box of patterned bytes seeded by the job id. */
export function fakeVideo(seed: string, size = 2048 + (seed.length % 7) * 64): Uint8Array {
	const out = new Uint8Array(size);
	const head = [0, 0, 0, 24, ..."ftypisom".split("").map((c) => c.charCodeAt(0)), 0, 0, 2, 0];
	head.push(..."isommp41".split("").map((c) => c.charCodeAt(0)));
	out.set(head, 0);
	const mdat = size - 24;
	out.set([(mdat >>> 24) & 255, (mdat >>> 16) & 255, (mdat >>> 8) & 255, mdat & 255], 24);
	out.set(
		[..."mdat"].map((c) => c.charCodeAt(0)),
		28,
	);
	let x = 0;
	for (const c of seed) x = (x * 31 + c.charCodeAt(0)) >>> 0;
	for (let i = 32; i < size; i++) {
		x = (x * 1103515245 + 12345) >>> 0;
		out[i] = x >>> 24;
	}
	return out;
}

export async function startPodEmulator(options: PodEmulatorOptions = {}): Promise<PodEmulator> {
	const token = options.token ?? "emulator-token";
	const transfers = options.transfers ?? "relay";
	const jobs = new Map<string, EmuJob>();
	/** Every /run accepted, never forgotten (a vanished job leaves `jobs`). */
	const runs: { id: string; prompt: string; input: Json }[] = [];
	const spent = new Map<string, number>();
	const stats = { completed: 0, failed: 0, retried: 0 };
	const served = new Map<string, number>();
	const count = (name: string) => served.set(name, (served.get(name) ?? 0) + 1);
	let seq = 0;

	/** Takes one use of a fault for this prompt; returns the directive while it has uses left. */
	function fault(prompt: string, name: string): Directive | undefined {
		const d = parseDirectives(prompt).find((x) => x.name === name);
		if (!d) return undefined;
		const key = `${prompt}\u0000${name}`;
		const used = spent.get(key) ?? 0;
		if (used >= d.count) return undefined;
		spent.set(key, used + 1);
		count(d.value === undefined ? name : `${name}=${d.value}`);
		return d;
	}
	const option = (prompt: string, name: string) => parseDirectives(prompt).find((x) => x.name === name)?.value;

	const send = sendJson;

	/** Answers a `=CODE` fault: an HTTP error, or `timeout` (no answer at all). True when handled. */
	function injectHttpFault(res: NodeResponse, d: Directive | undefined, prompt: string): boolean {
		if (!d) return false;
		if (d.value === "timeout") return true;
		const status = Number(d.value ?? 503);
		const retryAfter = option(prompt, "retry-after");
		send(res, status, { error: `injected ${status}` }, retryAfter ? { "retry-after": retryAfter } : {});
		return true;
	}

	async function sha256(bytes: Uint8Array): Promise<string> {
		return hex(await crypto.subtle.digest("SHA-256", bytes));
	}

	/** How the job's video is written: one PUT, or (`#emu:multipart=N`) parts of N bytes. */
	function uploadPlan(job: EmuJob): UploadPlan {
		const output = (job.input.output ?? {}) as Json;
		const maxPut = (output.put as { max_size?: number } | undefined)?.max_size;
		// As the GPU worker does: a video larger than the signed PUT may carry goes through `parts_url`, in parts of
		// that size, unless the prompt asks for a part size of its own.
		const tooLarge = output.parts_url !== undefined && maxPut !== undefined && job.video.byteLength > maxPut;
		const partSize = Number(option(job.prompt, "multipart") ?? 0) || (tooLarge ? maxPut : 0);
		if (!partSize) return { kind: "put" };
		const lost = Number(option(job.prompt, "lostpart") ?? 0);
		const parts = [];
		for (let offset = 0, n = 1; offset < job.video.byteLength; offset += partSize, n++) {
			const length = Math.min(partSize, job.video.byteLength - offset);
			parts.push({ part_number: n, offset, length, skip: n === lost });
		}
		return { kind: "parts", parts };
	}

	/** The reported parts: the uploaded ones, plus a made-up etag for each skipped (`lostpart`) one. */
	function reportedParts(job: EmuJob, uploaded: { part_number: number; etag: string }[]) {
		const plan = uploadPlan(job);
		if (plan.kind === "put") return undefined;
		const skipped = plan.parts.filter((p) => p.skip).map((p) => ({ part_number: p.part_number, etag: '"0badc0de"' }));
		return [...uploaded, ...skipped].sort((a, b) => a.part_number - b.part_number);
	}

	/** Direct mode: asks `output.parts_url` for the part URLs of a `size`-byte video, as a real worker would. */
	async function requestParts(target: PartsUrl | undefined, size: number, plan: UploadPlan) {
		if (!target || plan.kind !== "parts") return null;
		const partSize = plan.parts[0]?.length ?? size;
		const res = await fetch(target.url, {
			method: "POST",
			headers: target.headers,
			body: JSON.stringify({ size, part_size: partSize }),
		}).catch(() => null);
		if (!res?.ok) return null;
		return ((await res.json()) as { parts: { url: string; headers: Record<string, string> }[] }).parts;
	}

	/** Direct mode: what a real worker does with the signed URLs. */
	async function transferDirectly(job: EmuJob): Promise<void> {
		const inputs = (job.input.inputs ?? {}) as Record<string, { url: string } | undefined>;
		const failedGet = await downloadInputs(inputs);
		if (failedGet) {
			job.transfers = { code: "input_download_failed", message: failedGet };
			return;
		}
		const output = (job.input.output ?? {}) as Json;
		const plan = uploadPlan(job);
		if (plan.kind === "parts") {
			const urls = await requestParts(output.parts_url as PartsUrl | undefined, job.video.byteLength, plan);
			if (!urls) {
				job.transfers = { code: "output_upload_failed", message: "parts_url: no part URLs" };
				return;
			}
			const uploaded = [];
			for (const p of plan.parts.filter((x) => !x.skip)) {
				const url = urls?.[p.part_number - 1];
				const body = job.video.slice(p.offset, p.offset + p.length);
				const res = url ? await fetch(url.url, { method: "PUT", headers: url.headers, body }).catch(() => null) : null;
				await res?.arrayBuffer();
				if (!res?.ok) {
					job.transfers = { code: "output_upload_failed", message: `PUT part ${p.part_number}: ${res?.status}` };
					return;
				}
				uploaded.push({ part_number: p.part_number, etag: res.headers.get("etag") ?? "" });
			}
			job.parts = reportedParts(job, uploaded);
			job.transfers = "ok";
			return;
		}
		const put = output.put as { url: string; headers: Record<string, string> };
		const uploadFault = fault(job.prompt, "truncate")
			? "truncate"
			: fault(job.prompt, "corrupt")
				? "corrupt"
				: undefined;
		const status = await putVideo(put, job.video, uploadFault);
		// A broken upload is reported as written: the fault is a worker that lost the error (see direct-transfers.ts).
		const ok = uploadFault !== undefined || (status !== null && status >= 200 && status < 300);
		job.transfers = ok ? "ok" : { code: "output_upload_failed", message: `PUT: ${status ?? "unreachable"}` };
	}

	/** Moves the job one step on (per `/status` call, or per tick in clock mode). */
	async function step(job: EmuJob): Promise<void> {
		job.steps += 1;
		if (job.status === "IN_QUEUE" && job.steps >= 2) {
			const failCode = option(job.prompt, "fail");
			if (failCode) {
				job.status = "FAILED";
				job.error = { code: failCode, message: `Injected failure: ${failCode}.` };
				stats.failed += 1;
				count(`fail=${failCode}`);
			} else {
				job.status = "IN_PROGRESS";
				job.stage = "downloading";
				if (transfers === "direct") await transferDirectly(job);
			}
		} else if (job.status === "IN_PROGRESS" && job.stage === "downloading" && job.transfers !== "pending") {
			if (job.transfers === "ok") job.stage = "sampling";
			else {
				job.status = "FAILED";
				job.error = job.transfers;
				stats.failed += 1;
			}
		} else if (job.status === "IN_PROGRESS" && job.stage === "sampling") {
			job.status = "COMPLETED";
			job.stage = "done";
			stats.completed += 1;
		}
	}

	/** The job object `/status` answers. */
	/**
	 * The worker's log lines about the job, as the GPU worker carries them in its status answer (`logs`): from the
	 * start of its run. One repeats the input's signed URL and a token, as a careless line might, so the Worker's
	 * cleaning is tested.
	 */
	function logLines(job: EmuJob): string[] {
		if (job.status === "IN_QUEUE") return [];
		job.loggedAt ??= Date.now() / 1000;
		const image = ((job.input.inputs ?? {}) as Record<string, { url?: string } | undefined>).image?.url ?? "";
		const line = (dt: number, event: string, fields: Json = {}) =>
			JSON.stringify({ ts: (job.loggedAt ?? 0) + dt, event, job_id: job.id, ...fields });
		return [
			line(0, "job_started", { model: "preview" }),
			line(0.001, "input_fetched", { message: `GET ${image} ok`, auth: "token=emu-secret-123" }),
		];
	}

	async function report(job: EmuJob): Promise<Json> {
		const lines = logLines(job);
		const base = { id: job.id, status: job.status, delayTime: 120, ...(lines.length > 0 ? { logs: lines } : {}) };
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
			case "FAILED":
				// As the GPU worker sends it: RunPod declares `error` a string, so `{code, message}` travels as JSON text.
				return { ...base, executionTime: 800, error: JSON.stringify(job.error) };
			case "COMPLETED": {
				const params = (job.input.params ?? {}) as Json;
				const real = await sha256(job.video);
				return {
					...base,
					executionTime: 5400,
					output: {
						video: {
							content_type: "video/mp4",
							size: job.video.byteLength,
							sha256: parseDirectives(job.prompt).some((d) => d.name === "badsha") ? "0".repeat(64) : real,
							duration_s: Number(params.duration_s ?? 5),
							width: Number(params.width ?? 640),
							height: Number(params.height ?? 640),
							fps: Number(params.fps ?? 16),
							...(job.parts ? { parts: job.parts } : {}),
						},
						// As the GPU worker names the GPU of a ComfyUI run.
						gpu: "Emulated GPU (pod emulator)",
					},
				};
			}
		}
	}

	function videoFor(id: string, prompt: string): Uint8Array {
		const seed = options.videoSeed === "prompt" ? prompt : id;
		const multipart = option(prompt, "multipart");
		if (multipart) return fakeVideo(seed, Number(multipart) + 1024 * 1024);
		const size = option(prompt, "size");
		return size ? fakeVideo(seed, Number(size)) : fakeVideo(seed);
	}

	const inventories = new Map<string, Json>();

	async function handle(req: NodeRequest, res: NodeResponse): Promise<void> {
		const url = new URL(req.url ?? "/", "http://emulator");
		// Under `/inv/{name}` the worker advertises the inventory set for that name (what a real GPU worker's
		// /health lists: its model files and ComfyUI's node classes), so one test's pod has what it says.
		const stocked = /^\/inv\/([^/]+)(\/.*)$/.exec(url.pathname);
		const path = stocked?.[2] ?? url.pathname;
		const body = await readBody(req);
		if (req.headers.authorization !== `Bearer ${token}`) return send(res, 401, { error: "unauthorized" });
		const json = (): Json => {
			try {
				return JSON.parse(new TextDecoder().decode(body)) as Json;
			} catch {
				return {};
			}
		};
		const statusMatch = /^\/status\/([^/]+)$/.exec(path);
		const cancelMatch = /^\/cancel\/([^/]+)$/.exec(path);
		const controlMatch = /^\/_control\/jobs\/([^/]+)(\/video|\/relayed)?$/.exec(path);

		// Test control: every run made for a prompt with its input, oldest first, vanished ones included (a
		// resubmitted job has several).
		const inventoryMatch = /^\/_control\/inventory\/([^/]+)$/.exec(path);
		if (req.method === "PUT" && inventoryMatch) {
			inventories.set(inventoryMatch[1] ?? "", json());
			return send(res, 200, { ok: true });
		}
		if (req.method === "GET" && path === "/_control/runs") {
			const wanted = url.searchParams.get("prompt") ?? "";
			return send(res, 200, { runs: runs.filter((r) => r.prompt === wanted).map(({ id, input }) => ({ id, input })) });
		}
		if (req.method === "POST" && path === "/run") {
			const input = (json().input ?? {}) as Json;
			const prompt = String(((input.params ?? {}) as Json).prompt ?? "");
			if (injectHttpFault(res, fault(prompt, "run"), prompt)) return;
			if (typeof input.model !== "string") return send(res, 400, { error: "input.model is required" });
			seq += 1;
			const id = `emu-${seq}-${Math.random().toString(36).slice(2, 8)}`;
			runs.push({ id, prompt, input });
			jobs.set(id, {
				id,
				input,
				prompt,
				status: "IN_QUEUE",
				stage: "queued",
				steps: 0,
				busy: false,
				transfers: "pending",
				video: videoFor(id, prompt),
				policy: json().policy,
			});
			return send(res, 200, { id, status: "IN_QUEUE" });
		}
		if (req.method === "GET" && statusMatch) {
			const job = jobs.get(decodeURIComponent(statusMatch[1] ?? ""));
			if (!job) return send(res, 404, { error: "job not found" });
			if (injectHttpFault(res, fault(job.prompt, "status"), job.prompt)) return;
			if (fault(job.prompt, "vanish")) {
				jobs.delete(job.id);
				return send(res, 404, { error: "job not found" });
			}
			if (!options.tickMs) await step(job);
			return send(res, 200, await report(job));
		}
		if (req.method === "POST" && cancelMatch) {
			const job = jobs.get(decodeURIComponent(cancelMatch[1] ?? ""));
			if (!job) return send(res, 404, { error: "job not found" });
			if (job.status === "IN_QUEUE" || job.status === "IN_PROGRESS") job.status = "CANCELLED";
			return send(res, 200, { id: job.id, status: "CANCELLED" });
		}
		if (req.method === "GET" && path === "/health") {
			const active = [...jobs.values()];
			return send(res, 200, {
				jobs: {
					...stats,
					inProgress: active.filter((j) => j.status === "IN_PROGRESS").length,
					inQueue: active.filter((j) => j.status === "IN_QUEUE").length,
				},
				workers: { idle: 1, running: 0 },
				...(stocked && inventories.has(stocked[1] ?? "") ? { inventory: inventories.get(stocked[1] ?? "") } : {}),
			});
		}
		// The control API (test-only): see the file comment.
		if (controlMatch) {
			const job = jobs.get(decodeURIComponent(controlMatch[1] ?? ""));
			const sub = controlMatch[2];
			if (!job) return send(res, 404, { error: "job not found" });
			if (req.method === "GET" && !sub) {
				return send(res, 200, {
					id: job.id,
					status: job.status,
					stage: job.stage,
					input: job.input,
					policy: job.policy,
					awaiting_transfers: job.status === "IN_PROGRESS" && job.transfers === "pending",
					upload_plan: uploadPlan(job),
				});
			}
			if (req.method === "GET" && sub === "/video") {
				res.writeHead(200, { "content-type": "video/mp4" });
				return res.end(job.video);
			}
			if (req.method === "POST" && sub === "/relayed") {
				const report = json() as {
					downloads?: Record<string, { status: number }>;
					upload?: { status: number; parts?: { part_number: number; etag: string }[] };
				};
				const badGet = Object.entries(report.downloads ?? {}).find(([, r]) => r.status !== 200);
				if (badGet) job.transfers = { code: "input_download_failed", message: `GET ${badGet[0]}: ${badGet[1].status}` };
				else if (!report.upload || report.upload.status < 200 || report.upload.status > 299) {
					job.transfers = { code: "output_upload_failed", message: `PUT: ${report.upload?.status ?? "none"}` };
				} else {
					job.transfers = "ok";
					job.parts = reportedParts(job, report.upload.parts ?? []);
				}
				return send(res, 200, { ok: true });
			}
		}
		return send(res, 404, { error: "not found" });
	}

	const server = await serveOnLoopback(handle, options.port ?? 0);
	const port = server.port;
	const clock = options.tickMs
		? setInterval(() => {
				for (const job of jobs.values()) {
					if (job.busy || job.status === "COMPLETED" || job.status === "FAILED" || job.status === "CANCELLED") continue;
					job.busy = true;
					void step(job).finally(() => {
						job.busy = false;
					});
				}
			}, options.tickMs)
		: undefined;
	return {
		url: `http://127.0.0.1:${port}`,
		token,
		injected: () => Object.fromEntries(served),
		close: () => {
			if (clock !== undefined) clearInterval(clock);
			return server.close();
		},
	};
}
