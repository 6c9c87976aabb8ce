import { runInDurableObject } from "cloudflare:test";
import { Webhook } from "standardwebhooks";
import { beforeAll, describe, expect, it } from "vitest";
import { JobNotifier } from "../../durable-objects/job/notifier";
import { openJobSql } from "../../durable-objects/job/schema";
import { JobStore } from "../../durable-objects/job/store";
import { call, newAccount, newAdminKey, revealWebhookSecret } from "../helpers/api";
import { record, stepUntil, stub } from "../helpers/job-object";
import { alarmUntil, hook, makeDeliveriesDue, runToSuccess, startJob } from "../helpers/notify";

const NONE: { headers: Record<string, string>; body: string } = { headers: {}, body: "" };

let auth: Record<string, string>;
let hooksSecret: string;
beforeAll(async () => {
	auth = await newAccount("hooks");
	hooksSecret = await revealWebhookSecret("hooks");
});

/** The "hooks" account's secret, revealed once before any of its webhooks was sent. */
async function secret(): Promise<string> {
	return hooksSecret;
}

/** The job payload a receiver got, verified with the independent reference library. */
function verified(whsec: string, req: { headers: Record<string, string>; body: string }) {
	return new Webhook(whsec).verify(req.body, req.headers) as {
		type: string;
		timestamp: string;
		data: { id: string; status: string };
	};
}

describe("the webhook secret", () => {
	it("is a whsec_ secret per account, shown only by its rotation; the old one keeps signing for 24 h", async () => {
		const admin = await newAdminKey("hooks-shown");
		const rotated = await call("/v1/webhooks/secret/rotate", { method: "POST", headers: admin });
		expect(rotated.status).toBe(200);
		const view = (await rotated.json()) as {
			secret: string;
			secret_prefix: string;
			previous_secret_expires_at: string;
		};
		expect(view.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
		expect(view.secret_prefix).toBe(view.secret.slice(0, 10));
		const overlap = Date.parse(view.previous_secret_expires_at) - Date.now();
		expect(overlap).toBeGreaterThan(23.9 * 3600_000);
		expect(overlap).toBeLessThanOrEqual(24 * 3600_000);
		expect(await revealWebhookSecret("hooks-other")).not.toBe(view.secret);

		// Any key reads which secret is current, never the secret: nothing to verify or forge with.
		const reader = await newAccount("hooks-shown");
		const read = await call("/v1/webhooks/secret", { headers: reader });
		expect(read.status).toBe(200);
		const text = await read.text();
		expect(text).not.toContain(view.secret.slice(10));
		expect(JSON.parse(text)).toEqual({
			secret_prefix: view.secret_prefix,
			previous_secret_expires_at: view.previous_secret_expires_at,
			created_at: expect.any(String),
			rotated_at: expect.any(String),
		});
	});

	it("rotation needs the account:admin scope: a jobs key (read or write) is refused and nothing changes", async () => {
		const admin = await newAdminKey("hooks-scope");
		const before = (await (await call("/v1/webhooks/secret", { headers: admin })).json()) as { secret_prefix: string };
		for (const scopes of [["jobs:read"], ["jobs:read", "jobs:write"]]) {
			const created = await call("/v1/admin/keys", {
				method: "POST",
				headers: { authorization: "Bearer test-admin-token", "content-type": "application/json" },
				body: JSON.stringify({ name: "scoped", account: "hooks-scope", scopes }),
			});
			const { key } = (await created.json()) as { key: string };
			const res = await call("/v1/webhooks/secret/rotate", {
				method: "POST",
				headers: { authorization: `Bearer ${key}` },
			});
			expect(res.status).toBe(403);
			const problem = (await res.json()) as { detail: string };
			expect(problem.detail).toMatch(/account:admin/);
		}
		const after = (await (await call("/v1/webhooks/secret", { headers: admin })).json()) as { secret_prefix: string };
		expect(after.secret_prefix).toBe(before.secret_prefix);
	});

	it("needs an API key", async () => {
		expect((await call("/v1/webhooks/secret")).status).toBe(401);
	});

	it("is documented in /openapi.json with the events, share and webhook routes", async () => {
		const doc = (await (await call("/openapi.json")).json()) as { paths: Record<string, unknown> };
		expect(Object.keys(doc.paths)).toEqual(
			expect.arrayContaining([
				"/v1/webhooks/secret",
				"/v1/webhooks/secret/rotate",
				"/v1/webhooks/test",
				"/v1/jobs/{id}/events",
				"/v1/jobs/{id}/share",
				"/v1/share/{job_id}/video.mp4",
				"/v1/share/secret/rotate",
			]),
		);
	});
});

describe("POST /v1/webhooks/test", () => {
	it("sends a signed webhook.test now and reports the attempt; after a rotation both secrets verify", async () => {
		const account = await newAccount("hooks-test");
		const old = await revealWebhookSecret("hooks-test");
		const target = hook("test");
		const res = await call("/v1/webhooks/test", {
			method: "POST",
			headers: account,
			body: JSON.stringify({ url: target.url }),
		});
		expect(res.status).toBe(200);
		const result = (await res.json()) as { id: string; delivered: boolean; status_code: number };
		expect(result).toMatchObject({ delivered: true, status_code: 200, type: "webhook.test" });
		const [got] = await target.received();
		expect(got?.headers["webhook-id"]).toBe(result.id);
		expect(verified(old, got ?? NONE).type).toBe("webhook.test");

		const fresh = await revealWebhookSecret("hooks-test");
		await target.script({ status: 503 });
		const second = (await (
			await call("/v1/webhooks/test", { method: "POST", headers: account, body: JSON.stringify({ url: target.url }) })
		).json()) as { delivered: boolean; status_code: number };
		expect(second).toMatchObject({ delivered: false, status_code: 503 });
		const req = (await target.received())[1] ?? NONE;
		expect(req.headers["webhook-signature"]?.split(" ")).toHaveLength(2);
		expect(verified(fresh, req).type).toBe("webhook.test");
		expect(verified(old, req).type).toBe("webhook.test");
	});

	it.each([
		// Well-formed, refused by the outbound URL guard: 422; refused by the request schema: 400.
		["http://example.com/hook", 422],
		["https://10.1.2.3/hook", 422],
		["ftp://example.com/x", 400],
	])("refuses %s with a %s problem", async (url, status) => {
		const res = await call("/v1/webhooks/test", { method: "POST", headers: auth, body: JSON.stringify({ url }) });
		expect(res.status).toBe(status);
		expect(res.headers.get("content-type")).toBe("application/problem+json");
	});
});

describe("job webhooks", () => {
	it("refuses a job whose webhook URL is http to a public host", async () => {
		const res = await call("/v1/jobs", {
			method: "POST",
			headers: auth,
			body: JSON.stringify({
				model: "preview",
				input: { image: "upl_abc" },
				webhook: { url: "http://example.com/hook" },
			}),
		});
		expect(res.status).toBe(422);
		expect(((await res.json()) as { errors: { path: string }[] }).errors[0]?.path).toBe("json.webhook.url");
	});

	it("by default sends only job.succeeded, signed, with the job as data; deliveries show on the job", async () => {
		const target = hook("default");
		const id = await startJob(auth, "pod-hooks", { webhook: { url: target.url } });
		await runToSuccess(id);
		const job = await alarmUntil(id, (j) => (j.deliveries ?? []).every((d) => d.status === "delivered"));
		expect(job.deliveries).toHaveLength(1);
		const received = await target.received();
		expect(received).toHaveLength(1);
		const payload = verified(await secret(), received[0] ?? NONE);
		expect(payload.type).toBe("job.succeeded");
		expect(payload.data).toMatchObject({ id, status: "succeeded" });
		// The finished video's share link rides along, playable without a key.
		const shareUrl = (payload.data as { share_url?: string }).share_url ?? "";
		expect(shareUrl).toMatch(new RegExp(`/v1/share/${id}/video\\.mp4\\?exp=`));
		expect((await call(shareUrl)).status).toBe(200);
		expect(JSON.stringify(payload)).not.toContain("whsec_");

		const view = (await (await call(`/v1/jobs/${id}`, { headers: auth })).json()) as {
			webhook: { url: string; events: string[]; deliveries: Record<string, unknown>[] };
		};
		expect(view.webhook).toEqual({
			url: target.url,
			events: ["succeeded", "failed", "canceled"],
			deliveries: [
				{
					id: received[0]?.headers["webhook-id"],
					type: "job.succeeded",
					attempts: 1,
					status: "delivered",
					last_status_code: 200,
				},
			],
		});
	});

	it("retries with backoff (500, then 429 + Retry-After), same id across retries, distinct ids per event", async () => {
		const target = hook("retry");
		await target.script({ status: 500 }, { status: 429, retry_after: "120" });
		const id = await startJob(auth, "pod-hooks", { webhook: { url: target.url, events: ["running", "succeeded"] } });
		await stepUntil(id, (j) => j.status === "running");

		const afterFirst = await alarmUntil(id, (j) => (j.deliveries?.[0]?.attempts ?? 0) >= 1);
		const first = afterFirst.deliveries?.[0];
		expect(first).toMatchObject({ type: "job.running", status: "pending", attempts: 1, last_status_code: 500 });
		const wait1 = Date.parse(first?.next_attempt_at ?? "") - Date.now();
		expect(wait1).toBeGreaterThan(0);
		expect(wait1).toBeLessThanOrEqual(5_000);

		await makeDeliveriesDue(id);
		const afterSecond = await alarmUntil(id, (j) => (j.deliveries?.[0]?.attempts ?? 0) >= 2);
		const second = afterSecond.deliveries?.[0];
		expect(second).toMatchObject({ status: "pending", attempts: 2, last_status_code: 429 });
		// Retry-After: 120 is a floor over the 30 s schedule step.
		expect(Date.parse(second?.next_attempt_at ?? "") - Date.now()).toBeGreaterThan(110_000);

		await makeDeliveriesDue(id);
		const delivered = await alarmUntil(id, (j) => j.deliveries?.[0]?.status === "delivered");
		expect(delivered.deliveries?.[0]).toMatchObject({ attempts: 3, last_status_code: 200 });

		await runToSuccess(id);
		await alarmUntil(id, (j) => j.deliveries?.length === 2 && j.deliveries.every((d) => d.status === "delivered"));
		const received = await target.received();
		expect(received.map((r) => JSON.parse(r.body).type)).toEqual([
			"job.running",
			"job.running",
			"job.running",
			"job.succeeded",
		]);
		const ids = received.map((r) => r.headers["webhook-id"]);
		expect(new Set(ids.slice(0, 3)).size).toBe(1);
		expect(ids[3]).not.toBe(ids[0]);
		// The same message bytes on every retry; each attempt signed anew.
		expect(new Set(received.slice(0, 3).map((r) => r.body)).size).toBe(1);
		const whsec = await secret();
		for (const r of received) expect(() => verified(whsec, r)).not.toThrow();
	});

	it("a 410 switches the job's endpoint off: no further deliveries", async () => {
		const target = hook("gone");
		await target.script({ status: 410 });
		const id = await startJob(auth, "pod-hooks", {
			webhook: { url: target.url, events: ["running", "progress", "succeeded"] },
		});
		await stepUntil(id, (j) => j.status === "running");
		await alarmUntil(id, (j) => j.deliveries?.[0]?.status === "disabled");
		const done = await runToSuccess(id);
		expect(done.deliveries).toEqual([
			expect.objectContaining({ type: "job.running", status: "disabled", attempts: 1, last_status_code: 410 }),
		]);
		expect(await target.received()).toHaveLength(1);
	});

	it("throttles job.progress to one per 2 s; status events are never throttled", async () => {
		const target = hook("progress");
		const id = await startJob(auth, "pod-hooks", { webhook: { url: target.url, events: ["progress", "failed"] } });
		const types = await runInDurableObject(stub(id), (_instance, state) => {
			const sql = openJobSql(state.storage.sql);
			const job = new JobStore(sql).load();
			if (!job) throw new Error("no job");
			const notifier = new JobNotifier(sql);
			let prev = job;
			for (const percent of [10, 20, 30]) {
				const next = { ...prev, status: "running" as const, progress: { percent, stage: "sampling" } };
				notifier.saved(prev, next);
				prev = next;
			}
			notifier.saved(prev, { ...prev, status: "failed" as const, error: { code: "x", message: "y" } });
			return notifier.deliveries().map((d) => d.type);
		});
		// 10: the status change to running (not in the filter); 20: a progress webhook; 30: within 2 s, dropped.
		expect(types).toEqual(["job.progress", "job.failed"]);
	});

	it("honours the events filter, and a canceled job's webhook still goes out after the cancel", async () => {
		const target = hook("cancel");
		const id = await startJob(auth, "pod-hooks", { webhook: { url: target.url, events: ["canceled"] } });
		await stepUntil(id, (j) => j.status === "running");
		const res = await call(`/v1/jobs/${id}/cancel`, { method: "POST", headers: auth });
		expect(res.status).toBe(200);
		const job = await alarmUntil(id, (j) => j.deliveries?.[0]?.status === "delivered");
		expect(job.deliveries).toHaveLength(1);
		const received = await target.received();
		expect(received.map((r) => JSON.parse(r.body).type)).toEqual(["job.canceled"]);
		expect((await record(id)).status).toBe("canceled");
	});
});
