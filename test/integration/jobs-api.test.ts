import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { prompt, putPodBackend } from "../emulators/pod/harness";
import { call, newAccount, PNG, upload, wav } from "../helpers/api";

let auth: Record<string, string>;
let other: Record<string, string>;
let image: string;
let audio: string;

beforeAll(async () => {
	expect((await putPodBackend("pod-api")).status).toBe(200);
	auth = await newAccount("api");
	other = await newAccount("api-other");
	image = await upload(auth, PNG, "image/png", "fox.png");
	audio = await upload(auth, wav(), "audio/wav", "voice.wav");
});

function post(body: unknown, headers: Record<string, string> = auth) {
	return call("/v1/jobs", { method: "POST", headers, body: JSON.stringify(body) });
}

async function problem(
	res: Response,
): Promise<{ status: number; code: string; detail: string; errors?: { path: string; message?: string }[] }> {
	expect(res.headers.get("content-type")).toBe("application/problem+json");
	return {
		status: res.status,
		...((await res.json()) as { code: string; detail: string; errors?: { path: string }[] }),
	};
}

describe("POST /v1/jobs validation", () => {
	const valid = () => ({ model: "preview", input: { image } });
	it.each([
		["an unknown model", { model: "sora", input: { image: "upl_x" } }, 400, "json.model"],
		["no image", { model: "preview", input: {} }, 400, "json.input.image"],
		["a non-id image", { model: "preview", input: { image: "fox.png" } }, 400, "json.input.image"],
		[
			"a bad resolution",
			{ model: "preview", input: { image: "upl_x", resolution: "640x361" } },
			400,
			"json.input.resolution",
		],
		[
			"a huge resolution",
			{ model: "preview", input: { image: "upl_x", resolution: "4096x4096" } },
			400,
			"json.input.resolution",
		],
		[
			"a short duration",
			{ model: "preview", input: { image: "upl_x", duration_s: 0.1 } },
			400,
			"json.input.duration_s",
		],
		["fps 0", { model: "preview", input: { image: "upl_x", fps: 0 } }, 400, "json.input.fps"],
		["a negative seed", { model: "preview", input: { image: "upl_x", seed: -1 } }, 400, "json.input.seed"],
		["steps 101", { model: "preview", input: { image: "upl_x", steps: 101 } }, 400, "json.input.steps"],
		["s2v without audio", { model: "wan2.2-s2v", input: { image: "upl_x" } }, 400, "json.input.audio"],
		[
			"an http webhook",
			{ model: "preview", input: { image: "upl_x" }, webhook: { url: "http://x.test" } },
			422,
			"json.webhook.url",
		],
		["an unknown field", { model: "preview", input: { image: "upl_x" }, extra: 1 }, 400, "json"],
	])("refuses %s", async (_name, body, status, path) => {
		const p = await problem(await post(body));
		expect(p.status).toBe(status);
		// Well-formed but refused by the outbound URL guard: 422; malformed: 400.
		expect(p.code).toBe(status === 422 ? "unprocessable" : "invalid_request");
		expect(p.errors?.map((e) => e.path)).toContain(path);
	});

	it("refuses broken JSON, a non-JSON body and an empty body with 4xx problems", async () => {
		const res = await call("/v1/jobs", { method: "POST", headers: auth, body: "{" });
		expect((await problem(res)).status).toBe(400);
		const text = await call("/v1/jobs", {
			method: "POST",
			headers: { authorization: auth.authorization ?? "", "content-type": "text/plain" },
			body: "model=preview",
		});
		const textProblem = await problem(text);
		expect(textProblem.status).toBeGreaterThanOrEqual(400);
		expect(textProblem.status).toBeLessThan(500);
		const empty = await call("/v1/jobs", { method: "POST", headers: auth });
		expect((await problem(empty)).status).toBe(400);
	});

	it.each([
		[
			"an upload that does not exist",
			() => ({ model: "preview", input: { image: "upl_nothere" } }),
			400,
			"invalid_request",
		],
		["an audio upload as image", () => ({ model: "preview", input: { image: audio } }), 400, "invalid_request"],
		[
			"an image upload as audio",
			() => ({ model: "wan2.2-s2v", input: { image, audio: image } }),
			400,
			"invalid_request",
		],
		["an unknown backend", () => ({ ...valid(), backend: "nope" }), 400, "invalid_request"],
	])("answers %s with a problem", async (_name, body, status, code) => {
		const p = await problem(await post(body()));
		expect([p.status, p.code]).toEqual([status, code]);
	});

	it.each([
		["the metadata address", "https://169.254.169.254/latest/meta-data/"],
		["loopback over http", "http://127.0.0.1:8787/a.png"],
		["localhost", "https://localhost/a.png"],
		["a private address", "https://10.1.2.3/a.png"],
		["an octal loopback", "https://0177.0.0.1/a.png"],
	])("refuses a URL input to %s before fetching anything", async (_name, url) => {
		const p = await problem(await post({ model: "preview", input: { image: url } }));
		expect([p.status, p.code]).toEqual([422, "unprocessable"]);
		expect(p.errors).toEqual([{ path: "json.input.image", message: "forbidden_url" }]);
	});

	it("answers a pending upload with 409", async () => {
		const pending = await upload(auth, PNG, "image/png", "later.png", false);
		const p = await problem(await post({ model: "preview", input: { image: pending } }));
		expect([p.status, p.code]).toEqual([409, "conflict"]);
	});

	it("answers another account's upload as not found", async () => {
		const p = await problem(await post({ model: "preview", input: { image } }, other));
		expect([p.status, p.code]).toEqual([400, "invalid_request"]);
	});

	it("needs jobs:write", async () => {
		const res = await call("/v1/admin/keys", {
			method: "POST",
			headers: { authorization: "Bearer test-admin-token", "content-type": "application/json" },
			body: JSON.stringify({ name: "ro", account: "api", scopes: ["jobs:read"] }),
		});
		const { key } = (await res.json()) as { key: string };
		const p = await problem(
			await post(valid(), { authorization: `Bearer ${key}`, "content-type": "application/json" }),
		);
		expect(p.status).toBe(403);
		expect((await problem(await post(valid(), {}))).status).toBe(401);
	});

	it("accepts s2v with audio and every parameter", async () => {
		const res = await post({
			model: "wan2.2-s2v",
			input: { image, audio, prompt: prompt(), resolution: "480x832", duration_s: 4, fps: 16, seed: 7, steps: 4 },
			webhook: { url: "https://hooks.test/x", events: ["succeeded"] },
			backend: "pod-api",
		});
		expect(res.status).toBe(202);
	});
});

describe("backend routing", () => {
	it("answers 409 for a disabled or non-serving backend and 422 model_unavailable when none serves the model", async () => {
		expect((await putPodBackend("pod-off", { enabled: false })).status).toBe(200);
		expect((await putPodBackend("pod-preview-only", { models: ["preview"], priority: 0 })).status).toBe(200);
		const off = await problem(await post({ model: "preview", input: { image }, backend: "pod-off" }));
		expect([off.status, off.code]).toEqual([409, "conflict"]);
		const wrongModel = await problem(
			await post({ model: "wan2.2-i2v", input: { image }, backend: "pod-preview-only" }),
		);
		expect([wrongModel.status, wrongModel.code]).toEqual([409, "conflict"]);
		// Only `pod-api` serves every model; with it disabled nothing serves wan2.2-i2v.
		expect((await putPodBackend("pod-api", { enabled: false })).status).toBe(200);
		const none = await problem(await post({ model: "wan2.2-i2v", input: { image } }));
		expect([none.status, none.code]).toEqual([422, "model_unavailable"]);
		expect(none.detail).toMatch(/wan2\.2-i2v.*PUT \/v1\/admin\/backends/);
		expect(none.errors).toEqual([{ path: "json.model", message: "no enabled backend serves it" }]);
		const picked = await post({ model: "preview", input: { image } });
		expect(((await picked.json()) as { backend: { name: string } }).backend.name).toBe("pod-preview-only");
		expect((await putPodBackend("pod-api")).status).toBe(200);
	});

	it("refuses a backend whose kind has no job path yet", async () => {
		const put = await call("/v1/admin/backends/comfy", {
			method: "PUT",
			headers: { authorization: "Bearer test-admin-token", "content-type": "application/json" },
			body: JSON.stringify({ kind: "comfyui", config: { url: "https://comfy.test" } }),
		});
		expect(put.status).toBe(200);
		const p = await problem(await post({ model: "preview", input: { image }, backend: "comfy" }));
		expect([p.status, p.code]).toEqual([409, "conflict"]);
	});
});

describe("Idempotency-Key", () => {
	const body = () => ({ model: "preview", input: { image, prompt: "same" } });

	it("returns the same job for the same key and body, 422 for another body", async () => {
		const headers = { ...auth, "idempotency-key": crypto.randomUUID() };
		const first = await post(body(), headers);
		expect(first.status).toBe(202);
		const job = (await first.json()) as { id: string };
		// Same meaning, other key order: still the same request.
		const again = await call("/v1/jobs", {
			method: "POST",
			headers,
			body: JSON.stringify({ input: { prompt: "same", image }, model: "preview" }),
		});
		expect(again.status).toBe(200);
		expect(((await again.json()) as { id: string }).id).toBe(job.id);
		const other = await problem(await post({ ...body(), input: { image, prompt: "other" } }, headers));
		expect([other.status, other.code]).toEqual([422, "idempotency_mismatch"]);
	});

	it("answers 409 while the first request is still in flight", async () => {
		const key = crypto.randomUUID();
		const first = await post(body(), { ...auth, "idempotency-key": key });
		expect(first.status).toBe(202);
		// Simulate a request still running: the claim exists, no job recorded yet.
		await env.DB.prepare("UPDATE idempotency_keys SET state = 'in_flight', job_id = NULL WHERE idem_key = ?")
			.bind(key)
			.run();
		const p = await problem(await post(body(), { ...auth, "idempotency-key": key }));
		expect([p.status, p.code]).toEqual([409, "idempotency_in_flight"]);
	});

	it("scopes keys per account and refuses keys over 255 characters", async () => {
		const key = crypto.randomUUID();
		expect((await post(body(), { ...auth, "idempotency-key": key })).status).toBe(202);
		const otherImage = await upload(other, PNG, "image/png", "o.png");
		expect(
			(await post({ model: "preview", input: { image: otherImage } }, { ...other, "idempotency-key": key })).status,
		).toBe(202);
		const long = await problem(await post(body(), { ...auth, "idempotency-key": "k".repeat(256) }));
		expect(long.status).toBe(400);
	});

	it("treats a key older than 24 h as new", async () => {
		const key = crypto.randomUUID();
		expect((await post(body(), { ...auth, "idempotency-key": key })).status).toBe(202);
		await env.DB.prepare("UPDATE idempotency_keys SET expires_at = '2000-01-01T00:00:00.000Z' WHERE idem_key = ?")
			.bind(key)
			.run();
		const other = await post(
			{ model: "preview", input: { image, prompt: "new" } },
			{ ...auth, "idempotency-key": key },
		);
		expect(other.status).toBe(202);
	});

	it("forgets the key when the request fails, so a fixed retry may reuse it", async () => {
		const headers = { ...auth, "idempotency-key": crypto.randomUUID() };
		expect((await post({ model: "preview", input: { image: "upl_missing" } }, headers)).status).toBe(400);
		expect((await post(body(), headers)).status).toBe(202);
	});
});

describe("reading jobs", () => {
	it("lists newest first with cursors and a status filter, only the caller's jobs", async () => {
		const acct = await newAccount("lister");
		const img = await upload(acct, PNG, "image/png", "l.png");
		const ids: string[] = [];
		for (let i = 0; i < 5; i++) {
			const res = await post({ model: "preview", input: { image: img } }, acct);
			ids.push(((await res.json()) as { id: string }).id);
		}
		const cancel = await call(`/v1/jobs/${ids[0]}/cancel`, { method: "POST", headers: acct });
		expect(cancel.status).toBe(200);

		const seen: string[] = [];
		let cursor: string | null = null;
		do {
			const q: string = cursor ? `&cursor=${cursor}` : "";
			const page = (await (await call(`/v1/jobs?limit=2${q}`, { headers: acct })).json()) as {
				data: { id: string; links: { self: string } }[];
				next_cursor: string | null;
			};
			expect(page.data.length).toBeLessThanOrEqual(2);
			seen.push(...page.data.map((j) => j.id));
			cursor = page.next_cursor;
		} while (cursor);
		expect(seen).toHaveLength(5);
		expect(new Set(seen)).toEqual(new Set(ids));

		const canceled = (await (await call("/v1/jobs?status=canceled", { headers: acct })).json()) as {
			data: { id: string; status: string }[];
		};
		expect(canceled.data.map((j) => j.id)).toEqual([ids[0]]);
		expect(canceled.data[0]?.status).toBe("canceled");
	});

	it.each([["limit=0"], ["limit=101"], ["status=done"], ["cursor=%%%"]])("refuses ?%s", async (q) => {
		expect((await problem(await call(`/v1/jobs?${q}`, { headers: auth }))).status).toBe(400);
	});

	it("hides another account's job and video (404), and unknown ids", async () => {
		const res = await post({ model: "preview", input: { image } });
		const { id } = (await res.json()) as { id: string };
		for (const path of [`/v1/jobs/${id}`, `/v1/jobs/${id}/video`]) {
			const p = await problem(await call(path, { headers: other }));
			expect([p.status, p.code]).toEqual([404, "not_found"]);
		}
		expect((await call(`/v1/jobs/${id}/cancel`, { method: "POST", headers: other })).status).toBe(404);
		expect((await call("/v1/jobs/job_doesnotexist", { headers: auth })).status).toBe(404);
		expect((await call("/v1/jobs/../../etc", { headers: auth })).status).toBe(404);
		const mine = await call(`/v1/jobs/${id}/video`, { headers: auth });
		expect((await problem(mine)).code).toBe("not_ready");
	});
});
