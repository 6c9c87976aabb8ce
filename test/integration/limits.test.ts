import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { RateLimiterDO } from "../../durable-objects/rate-limiter";
import { hashApiKey } from "../../src/auth/api-keys";
import { prompt, putPodBackend } from "../emulators/pod/harness";
import { ADMIN, call, newAccount, PNG, upload } from "../helpers/api";
import { stub } from "../helpers/job-object";
import { hook, runToSuccess } from "../helpers/notify";

type Auth = Record<string, string>;

interface Problem {
	status: number;
	code: string;
	detail: string;
}

interface LimitsView {
	account: string;
	limits: Record<string, { value: number | null; source: "account" | "default" }>;
	month: string;
	month_spend_usd: number;
	active_jobs: number;
	rate_limit?: { requests?: { quota: number; remaining: number; reset_s: number } } | null;
}

function setLimits(account: string, body: Record<string, unknown>): Promise<Response> {
	return call(`/v1/admin/accounts/${account}/limits`, { method: "PUT", headers: ADMIN, body: JSON.stringify(body) });
}

async function limitedAccount(account: string, limits: Record<string, unknown>): Promise<Auth> {
	const auth = await newAccount(account);
	const res = await setLimits(account, limits);
	if (res.status !== 200) throw new Error(`limits not set: ${res.status} ${await res.text()}`);
	return auth;
}

/** A new account with these limits and one key of it: the key's hash (its gate object's name) and headers. */
async function limitedKey(account: string, limits: Record<string, unknown>): Promise<{ hash: string; auth: Auth }> {
	const created = await call("/v1/admin/keys", {
		method: "POST",
		headers: ADMIN,
		body: JSON.stringify({ name: account, account }),
	});
	const { key } = (await created.json()) as { key: string };
	const res = await setLimits(account, limits);
	if (res.status !== 200) throw new Error(`limits not set: ${res.status} ${await res.text()}`);
	return { hash: await hashApiKey(key), auth: { authorization: `Bearer ${key}` } };
}

/** Sends `n` copies of a request at once; returns the responses in order. */
function burst(n: number, send: () => Promise<Response>): Promise<Response[]> {
	return Promise.all(Array.from({ length: n }, send));
}

const statuses = (responses: Response[]) => responses.map((r) => r.status).sort();
const count = (responses: Response[], status: number) => responses.filter((r) => r.status === status).length;

function createJob(auth: Auth, image: string, backend: string, headers: Record<string, string> = {}) {
	return call("/v1/jobs", {
		method: "POST",
		headers: { ...auth, ...headers },
		body: JSON.stringify({ model: "preview", input: { image, prompt: prompt() }, backend }),
	});
}

describe("per-key request rate limit", () => {
	it("lets exactly the quota of a concurrent burst through; the rest get 429 with Retry-After and RateLimit", async () => {
		const auth = await limitedAccount("burst", { requests_per_minute: 5 });
		const responses = await burst(8, () => call("/v1/jobs", { headers: auth }));
		expect(count(responses, 200)).toBe(5);
		expect(count(responses, 429)).toBe(3);

		const ok = responses.filter((r) => r.status === 200);
		for (const r of ok) expect(r.headers.get("ratelimit-policy")).toBe('"requests";q=5;w=60');
		// Each success reports the tokens it left: 4, 3, 2, 1, 0, each exactly once.
		const remaining = ok.map((r) => Number(/r=(\d+)/.exec(r.headers.get("ratelimit") ?? "")?.[1])).sort();
		expect(remaining).toEqual([0, 1, 2, 3, 4]);

		for (const r of responses.filter((x) => x.status === 429)) {
			expect(r.headers.get("content-type")).toBe("application/problem+json");
			const retryAfter = r.headers.get("retry-after") ?? "";
			expect(retryAfter).toMatch(/^\d+$/);
			// One token of 5 per minute takes 12 s.
			expect(Number(retryAfter)).toBeGreaterThanOrEqual(11);
			expect(Number(retryAfter)).toBeLessThanOrEqual(12);
			expect(r.headers.get("ratelimit")).toBe(`"requests";r=0;t=${retryAfter}`);
			expect(r.headers.get("ratelimit-policy")).toBe('"requests";q=5;w=60');
			const body = (await r.json()) as Problem;
			expect(body).toMatchObject({ status: 429, code: "rate_limited" });
			expect(body.detail).toContain("5 requests per minute");
		}
	});

	it("lets exactly the quota of a burst through when the gate lends tokens ahead (120 a minute lends 2)", async () => {
		const auth = await limitedAccount("lent-burst", { requests_per_minute: 120 });
		const responses = await burst(150, () => call("/v1/jobs", { headers: auth }));
		// At most one token refills in the burst's half second or so.
		expect(count(responses, 200)).toBeGreaterThanOrEqual(120);
		expect(count(responses, 200)).toBeLessThanOrEqual(121);
		expect(count(responses, 429)).toBe(150 - count(responses, 200));
	});

	it("refills one token per 60/quota seconds", async () => {
		const { hash, auth } = await limitedKey("refill", { requests_per_minute: 60 });
		/** Sends requests one after another until one is refused; returns how many passed and the refusal. */
		async function untilRefused(): Promise<{ passed: number; refused: Response }> {
			let passed = 0;
			for (;;) {
				const res = await call("/v1/jobs", { headers: auth });
				if (res.status === 429) return { passed, refused: res };
				passed++;
			}
		}
		let started = Date.now();
		const burstRun = await untilRefused();
		// The full burst, plus whatever refilled (one a second) while it ran.
		expect(burstRun.passed).toBeGreaterThanOrEqual(60);
		expect(burstRun.passed).toBeLessThanOrEqual(60 + Math.ceil((Date.now() - started) / 1000));
		expect(burstRun.refused.headers.get("retry-after")).toBe("1");

		// A second passes for the key's gate: its stored charges move back by one, and the object rebuilds from them
		// (the platform evicting it), instead of the test sleeping.
		const gate = env.RATE_LIMITER.getByName(hash);
		await runInDurableObject(gate, (_instance, state) => {
			state.storage.sql.exec("UPDATE bucket SET updated_ms = updated_ms - 1000");
		});
		await evictDurableObject(gate);
		started = Date.now();
		const refilled = await untilRefused();
		// The one token that came back in that second; at most one more per second the run itself took.
		expect(refilled.passed).toBeGreaterThanOrEqual(1);
		expect(refilled.passed).toBeLessThanOrEqual(1 + Math.ceil((Date.now() - started) / 1000));
	});

	it("keeps a bucket per key: another key of the same account is not affected", async () => {
		const a = await limitedAccount("pair", { requests_per_minute: 2 });
		const b = await newAccount("pair");
		expect(statuses(await burst(3, () => call("/v1/jobs", { headers: a })))).toEqual([200, 200, 429]);
		expect(statuses(await burst(3, () => call("/v1/jobs", { headers: b })))).toEqual([200, 200, 429]);
	});

	it("persists the buckets, so an object rebuilt from storage (after an eviction) resumes them", async () => {
		const { hash, auth } = await limitedKey("persist", { requests_per_minute: 3 });
		expect(statuses(await burst(3, () => call("/v1/jobs", { headers: auth })))).toEqual([200, 200, 200]);
		const decision = await runInDurableObject(env.RATE_LIMITER.getByName(hash), async (_instance, state) => {
			const rows = state.storage.sql
				.exec<{ name: string; tokens: number }>("SELECT name, tokens FROM bucket")
				.toArray();
			expect(rows).toHaveLength(1);
			expect(rows[0]?.name).toBe("requests");
			expect(rows[0]?.tokens).toBeLessThan(1);
			// A fresh instance has only storage to go by.
			return new RateLimiterDO(state, env).take([{ name: "requests", quota: 3 }]);
		});
		expect(decision).toMatchObject({ allowed: false, limited_by: ["requests"] });
	});

	it("forgets an idle key's buckets a window after its last charge, storage included", async () => {
		const { hash, auth } = await limitedKey("idle", { requests_per_minute: 2 });
		expect(statuses(await burst(3, () => call("/v1/jobs", { headers: auth })))).toEqual([200, 200, 429]);
		const limiter = env.RATE_LIMITER.getByName(hash);
		// Still busy: the alarm only moves itself on.
		expect(await runDurableObjectAlarm(limiter)).toBe(true);
		expect(await runInDurableObject(limiter, (_i, state) => state.storage.getAlarm())).not.toBeNull();
		// A window later (the stored charges moved back by one), the alarm drops everything.
		await runInDurableObject(limiter, (_instance, state) => {
			state.storage.sql.exec("UPDATE bucket SET updated_ms = updated_ms - 61000");
		});
		const rebuilt = await runInDurableObject(limiter, async (_instance, state) => {
			const fresh = new RateLimiterDO(state, env);
			await fresh.alarm();
			return {
				tables: state.storage.sql
					.exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'bucket'")
					.toArray().length,
				alarm: await state.storage.getAlarm(),
			};
		});
		expect(rebuilt).toEqual({ tables: 0, alarm: null });
	});

	it("applies a changed limit on the next request", async () => {
		const auth = await newAccount("change");
		const before = await call("/v1/jobs", { headers: auth });
		expect(before.headers.get("ratelimit-policy")).toBe('"requests";q=1200;w=60');
		expect((await setLimits("change", { requests_per_minute: 2 })).status).toBe(200);
		expect(statuses(await burst(3, () => call("/v1/jobs", { headers: auth })))).toEqual([200, 200, 429]);
	});

	it("sends the RateLimit fields on errors of authenticated routes too, and exposes them to browsers", async () => {
		const auth = await newAccount("fields");
		const missing = await call("/v1/jobs/job_nothere", { headers: { ...auth, origin: "https://app.example" } });
		expect(missing.status).toBe(404);
		expect(missing.headers.get("ratelimit")).toMatch(/^"requests";r=\d+;t=\d+$/);
		expect(missing.headers.get("access-control-expose-headers")).toContain("ratelimit-policy");
		// Unauthenticated requests are not charged to anyone and carry no fields.
		const anonymous = await call("/v1/jobs");
		expect(anonymous.status).toBe(401);
		expect(anonymous.headers.get("ratelimit")).toBeNull();
	});
});

describe("job limits", () => {
	it("charges job creations to their own bucket, on top of requests", async () => {
		await putPodBackend("limits-jobs");
		const auth = await limitedAccount("jobsbucket", { jobs_per_minute: 2 });
		const image = await upload(auth, PNG, "image/png", "fox.png");
		const created = await burst(3, () => createJob(auth, image, "limits-jobs"));
		expect(statuses(created)).toEqual([202, 202, 429]);
		const refused = created.find((r) => r.status === 429);
		if (!refused) throw new Error("no refusal");
		expect(refused.headers.get("ratelimit-policy")).toBe('"requests";q=1200;w=60, "jobs";q=2;w=60');
		expect(refused.headers.get("ratelimit")).toMatch(/^"requests";r=\d+;t=\d+, "jobs";r=0;t=30$/);
		expect(refused.headers.get("retry-after")).toBe("30");
		expect(((await refused.json()) as Problem).detail).toContain("2 job creations per minute");
		// Other calls still pass: only the job bucket is empty.
		expect((await call("/v1/jobs", { headers: auth })).status).toBe(200);
	});

	it("holds concurrent jobs to the limit exactly under a parallel burst; a replay passes; a cancel frees a slot", async () => {
		await putPodBackend("limits-conc");
		const auth = await limitedAccount("concurrent", { max_concurrent_jobs: 3 });
		const image = await upload(auth, PNG, "image/png", "fox.png");
		const firstBody = JSON.stringify({ model: "preview", input: { image, prompt: prompt() }, backend: "limits-conc" });
		const createFirst = () =>
			call("/v1/jobs", { method: "POST", headers: { ...auth, "idempotency-key": "conc-1" }, body: firstBody });
		const first = await createFirst();
		expect(first.status).toBe(202);
		const { id: firstId } = (await first.json()) as { id: string };

		const created = await burst(6, () => createJob(auth, image, "limits-conc"));
		expect(count(created, 202)).toBe(2);
		expect(count(created, 429)).toBe(4);
		for (const r of created.filter((x) => x.status === 429)) {
			expect(r.headers.get("retry-after")).toMatch(/^\d+$/);
			const body = (await r.json()) as Problem;
			expect(body.code).toBe("rate_limited");
			expect(body.detail).toContain("3 concurrent jobs");
		}
		const own = (await (await call("/v1/limits", { headers: auth })).json()) as LimitsView;
		expect(own.active_jobs).toBe(3);

		// The same Idempotency-Key and body while the account is full: the existing job, neither counted nor refused.
		const replay = await createFirst();
		expect(replay.status).toBe(200);
		expect(((await replay.json()) as { id: string }).id).toBe(firstId);

		expect((await call(`/v1/jobs/${firstId}/cancel`, { method: "POST", headers: auth })).status).toBe(200);
		const afterCancel = await burst(2, () => createJob(auth, image, "limits-conc"));
		expect(statuses(afterCancel)).toEqual([202, 429]);
	});

	it("refuses a new job with 402 once the month's recorded spend reaches the cap, before any backend call", async () => {
		const auth = await limitedAccount("capped", { monthly_spend_cap_usd: 0.002 });
		// One real job to success on the pod emulator: 5.4 GPU seconds at $0.0005/s = $0.0027.
		await putPodBackend("limits-cap-pod");
		const image = await upload(auth, PNG, "image/png", "fox.png");
		const first = await createJob(auth, image, "limits-cap-pod");
		expect(first.status).toBe(202);
		await runToSuccess(((await first.json()) as { id: string }).id);

		// A backend whose every call the webhook receiver records.
		const target = hook("spend-cap");
		const put = await call("/v1/admin/backends/limits-cap-hook", {
			method: "PUT",
			headers: ADMIN,
			body: JSON.stringify({ kind: "pod", models: ["preview"], config: { url: target.url, token: "t" } }),
		});
		expect(put.status).toBe(200);
		const refused = await createJob(auth, image, "limits-cap-hook");
		expect(refused.status).toBe(402);
		const body = (await refused.json()) as Problem;
		expect(body.code).toBe("spend_cap_reached");
		expect(body.detail).toContain("$0.002");
		expect(body.detail).toContain("$0.0027");
		const view = (await (await call("/v1/limits", { headers: auth })).json()) as LimitsView;
		expect(view.month_spend_usd).toBe(0.0027);
		expect(view.active_jobs).toBe(0);

		// Raised cap: the same request creates a job, whose first step does call the backend.
		expect((await setLimits("capped", { monthly_spend_cap_usd: 1 })).status).toBe(200);
		const accepted = await createJob(auth, image, "limits-cap-hook");
		expect(accepted.status).toBe(202);
		expect(await target.received()).toHaveLength(0);
		const acceptedId = ((await accepted.json()) as { id: string }).id;
		await runDurableObjectAlarm(stub(acceptedId));
		// The submission may come from the platform's own firing of the alarm, a moment later: poll the receiver.
		const runPath = `${new URL(target.url).origin}/_control/received?path=${encodeURIComponent(`${new URL(target.url).pathname}/run`)}`;
		let submissions = 0;
		for (let i = 0; i < 50 && submissions === 0; i++) {
			submissions = ((await (await fetch(runPath)).json()) as { requests: unknown[] }).requests.length;
			if (submissions === 0) await new Promise((resolve) => setTimeout(resolve, 100));
		}
		expect(submissions).toBeGreaterThan(0);
	});
});

describe("limits API", () => {
	it("shows the defaults, sets overrides, and resets them with null", async () => {
		await newAccount("admin-view");
		const initial = await call("/v1/admin/accounts/admin-view/limits", { headers: ADMIN });
		expect(initial.status).toBe(200);
		const view = (await initial.json()) as LimitsView;
		expect(view).toMatchObject({
			account: "admin-view",
			limits: {
				requests_per_minute: { value: 1200, source: "default" },
				jobs_per_minute: { value: 120, source: "default" },
				max_concurrent_jobs: { value: 50, source: "default" },
				monthly_spend_cap_usd: { value: null, source: "default" },
			},
			month_spend_usd: 0,
			active_jobs: 0,
		});
		expect(view.month).toMatch(/^\d{4}-\d{2}$/);

		const set = await setLimits("admin-view", { jobs_per_minute: 7, monthly_spend_cap_usd: 25.5 });
		expect(((await set.json()) as LimitsView).limits).toMatchObject({
			requests_per_minute: { value: 1200, source: "default" },
			jobs_per_minute: { value: 7, source: "account" },
			monthly_spend_cap_usd: { value: 25.5, source: "account" },
		});
		const reset = await setLimits("admin-view", { jobs_per_minute: null });
		expect(((await reset.json()) as LimitsView).limits).toMatchObject({
			jobs_per_minute: { value: 120, source: "default" },
			monthly_spend_cap_usd: { value: 25.5, source: "account" },
		});
	});

	it.each([
		["a negative rate", { requests_per_minute: -1 }, "json.requests_per_minute"],
		["a zero rate", { jobs_per_minute: 0 }, "json.jobs_per_minute"],
		["a fractional count", { max_concurrent_jobs: 1.5 }, "json.max_concurrent_jobs"],
		["a string", { monthly_spend_cap_usd: "10" }, "json.monthly_spend_cap_usd"],
		["a negative cap", { monthly_spend_cap_usd: -5 }, "json.monthly_spend_cap_usd"],
		["an unknown field", { requests_per_hour: 5 }, "json"],
	])("refuses %s with a 400 problem", async (_name, body, path) => {
		await newAccount("admin-invalid");
		const res = await setLimits("admin-invalid", body);
		expect(res.status).toBe(400);
		const problem = (await res.json()) as Problem & { errors: { path: string }[] };
		expect(problem.code).toBe("invalid_request");
		expect(problem.errors.map((e) => e.path)).toContain(path);
	});

	it("answers 404 for an unknown account, 400 for a malformed name, 401 without the admin token", async () => {
		expect((await call("/v1/admin/accounts/nobody/limits", { headers: ADMIN })).status).toBe(404);
		expect((await setLimits("nobody", { requests_per_minute: 5 })).status).toBe(404);
		expect((await call("/v1/admin/accounts/bad%20name/limits", { headers: ADMIN })).status).toBe(400);
		expect((await call("/v1/admin/accounts/nobody/limits")).status).toBe(401);
		const broken = await call("/v1/admin/accounts/nobody/limits", { method: "PUT", headers: ADMIN, body: "{" });
		expect(broken.status).toBe(400);
	});

	it("lets a key read its own account's limits, usage and request bucket", async () => {
		const auth = await limitedAccount("self", { requests_per_minute: 10 });
		const res = await call("/v1/limits", { headers: auth });
		expect(res.status).toBe(200);
		const view = (await res.json()) as LimitsView;
		expect(view).toMatchObject({
			account: "self",
			limits: { requests_per_minute: { value: 10, source: "account" } },
			month_spend_usd: 0,
			active_jobs: 0,
			rate_limit: { requests: { quota: 10, remaining: 9, reset_s: 6 } },
		});
		expect((await call("/v1/limits")).status).toBe(401);
	});

	it("documents the limits routes, and the 429 on every key-authenticated route", async () => {
		const doc = (await (await call("/openapi.json")).json()) as {
			paths: Record<
				string,
				Record<string, { security?: Record<string, unknown>[]; responses: Record<string, unknown> }>
			>;
		};
		expect(Object.keys(doc.paths)).toEqual(
			expect.arrayContaining(["/v1/limits", "/v1/admin/accounts/{account}/limits"]),
		);
		const keyed = Object.entries(doc.paths).flatMap(([path, ops]) =>
			Object.entries(ops)
				.filter(([, op]) => op.security?.some((s) => "apiKey" in s))
				.map(([method, op]) => ({ route: `${method} ${path}`, has429: "429" in op.responses })),
		);
		expect(keyed.length).toBeGreaterThan(10);
		expect(keyed.filter((k) => !k.has429)).toEqual([]);
		expect(doc.paths["/v1/jobs"]?.post?.responses).toHaveProperty("402");
	});
});
