/**
 * The key's gate (durable-objects/rate-limiter.ts): one call per request admits the key, from a cached row that the
 * API's own changes drop at once. A revocation marks the gate before D1, so a D1 write that never lands cannot leave
 * the key working; the mark outlives the idle cleanup; and when the gate cannot be reached, D1 decides alone.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { RateLimiterDO } from "../../durable-objects/rate-limiter";
import { generateApiKey, hashApiKey } from "../../src/auth/api-keys";
import { createLogger } from "../../src/lib/logger";
import { admitKey, forgetKeys } from "../../src/limits/admission";
import { LEASE_MS } from "../../src/limits/lease";
import { ADMIN, call } from "../helpers/api";
import { newKey } from "../helpers/security";

const listJobs = (auth: Record<string, string>) => call("/v1/jobs", { headers: auth });

describe("the key's gate", () => {
	it("refuses a key marked revoked at the gate even while D1 still holds it as live", async () => {
		const { key, id, auth } = await newKey("gate-mark");
		expect((await listJobs(auth)).status).toBe(200);
		const hash = await hashApiKey(key);
		// What the revoke route does first (the gate's mark, and this isolate's lease dropped); as if its D1 write
		// then failed.
		await forgetKeys(env, [hash], { revoked: true });
		const row = await env.DB.prepare("SELECT revoked_at FROM api_keys WHERE id = ?").bind(id).first();
		expect(row?.revoked_at).toBeNull();
		expect((await listJobs(auth)).status).toBe(401);
		// Retrying the revocation completes it in D1.
		expect((await call(`/v1/admin/keys/${id}`, { method: "DELETE", headers: ADMIN })).status).toBe(200);
		expect((await listJobs(auth)).status).toBe(401);
	});

	it("refuses a key revoked through the API at its next request, though this isolate held tokens lent for it", async () => {
		const { id, auth } = await newKey("gate-lent");
		for (let i = 0; i < 3; i++) expect((await listJobs(auth)).status).toBe(200);
		expect((await call(`/v1/admin/keys/${id}`, { method: "DELETE", headers: ADMIN })).status).toBe(200);
		expect((await listJobs(auth)).status).toBe(401);
	});

	it("refuses a key revoked by another isolate once the tokens lent to this one run out", async () => {
		const { key, auth } = await newKey("gate-lease");
		// The default quota (1200 a minute) lends 20 tokens a second: this read leaves this isolate holding some.
		expect((await listJobs(auth)).status).toBe(200);
		// The gate's mark alone, as a revocation made in another isolate leaves it: this one still holds its lease.
		await env.RATE_LIMITER.getByName(await hashApiKey(key)).forget({ revoked: true });
		const marked = Date.now();
		let status = 200;
		while (status === 200 && Date.now() - marked < LEASE_MS + 5_000) status = (await listJobs(auth)).status;
		expect(status).toBe(401);
		// Admitted at most for the lease's tokens and for no longer than it lasts.
		expect(Date.now() - marked).toBeLessThanOrEqual(LEASE_MS + 1_000);
	});

	it("keeps the revoked mark through the idle cleanup and a rebuilt object", async () => {
		const { key, id, auth } = await newKey("gate-idle");
		expect((await listJobs(auth)).status).toBe(200);
		expect((await call(`/v1/admin/keys/${id}`, { method: "DELETE", headers: ADMIN })).status).toBe(200);
		const gate = env.RATE_LIMITER.getByName(await hashApiKey(key));
		const after = await runInDurableObject(gate, async (_instance, state) => {
			state.storage.sql.exec("UPDATE bucket SET updated_ms = updated_ms - 61000");
			const fresh = new RateLimiterDO(state, env);
			await fresh.alarm();
			const tables = state.storage.sql
				.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_cf_%'")
				.toArray()
				.map((t) => t.name);
			// Even with D1's row read back as live, a fresh object has the mark to go by.
			await env.DB.prepare("UPDATE api_keys SET revoked_at = NULL WHERE id = ?").bind(id).run();
			const rebuilt = new RateLimiterDO(state, env);
			return { tables, admission: await rebuilt.admit(await hashApiKey(key), "jobs:read", ["requests"]) };
		});
		expect(after.tables).toEqual(["revoked"]);
		expect(after.admission).toEqual({ status: "invalid" });
	});

	it("a guessed key is refused and leaves nothing stored in the gate made for it", async () => {
		const guessed = generateApiKey();
		expect((await listJobs({ authorization: `Bearer ${guessed}` })).status).toBe(401);
		const stored = await runInDurableObject(env.RATE_LIMITER.getByName(await hashApiKey(guessed)), (_i, state) =>
			state.storage.sql
				.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_cf_%'")
				.toArray(),
		);
		expect(stored).toEqual([]);
	});

	it("reads D1 again after an account's limits change through the API", async () => {
		const { auth } = await newKey("gate-limits");
		const policy = async () => (await listJobs(auth)).headers.get("ratelimit-policy");
		expect(await policy()).toBe('"requests";q=1200;w=60');
		const set = await call("/v1/admin/accounts/gate-limits/limits", {
			method: "PUT",
			headers: ADMIN,
			body: JSON.stringify({ requests_per_minute: 7 }),
		});
		expect(set.status).toBe(200);
		expect(await policy()).toBe('"requests";q=7;w=60');
	});

	it("when the gate cannot be reached, admits from D1 alone, without a rate limit", async () => {
		const { key } = await newKey("gate-down");
		const unreachable = {
			...env,
			RATE_LIMITER: {
				getByName() {
					throw new Error("Durable Object unreachable");
				},
			},
		} as unknown as Env;
		const hash = await hashApiKey(key);
		const admitted = await admitKey(unreachable, hash, "jobs:read", ["requests"], createLogger());
		expect(admitted).toMatchObject({ status: "ok", decision: null, caller: { accountId: "gate-down" } });
		expect(await admitKey(unreachable, hash, "admin" as never, ["requests"], createLogger())).toEqual({
			status: "forbidden",
			scope: "admin",
		});
		expect((await admitKey(unreachable, "0".repeat(64), "jobs:read", ["requests"], createLogger())).status).toBe(
			"invalid",
		);
	});
});
