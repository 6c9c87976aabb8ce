import { describe, expect, it } from "vitest";
import { ADMIN, call } from "../helpers/api";

describe("admin keys", () => {
	it("creates a key shown once, lists it without the secret, and revokes it at once", async () => {
		const created = await call("/v1/admin/keys", {
			method: "POST",
			headers: ADMIN,
			body: JSON.stringify({ name: "ci", account: "acme" }),
		});
		expect(created.status).toBe(201);
		const key = (await created.json()) as { id: string; key: string; account: string; scopes: string[] };
		expect(key.key).toMatch(/^rg_live_[A-Za-z0-9_-]{43}$/);
		expect(key.account).toBe("acme");
		expect(key.scopes).toEqual(["jobs:read", "jobs:write"]);

		const list = await call("/v1/admin/keys", { headers: ADMIN });
		const text = await list.text();
		expect(text).toContain(key.id);
		expect(text).not.toContain(key.key);

		const revoked = await call(`/v1/admin/keys/${key.id}`, { method: "DELETE", headers: ADMIN });
		expect(revoked.status).toBe(200);
		expect(((await revoked.json()) as { revoked_at: string | null }).revoked_at).not.toBeNull();
	});

	it.each([
		["no token", {}, 401],
		["wrong token", { authorization: "Bearer nope" }, 401],
	])("refuses %s", async (_name, headers, status) => {
		const res = await call("/v1/admin/keys", { headers });
		expect(res.status).toBe(status);
		expect(res.headers.get("content-type")).toBe("application/problem+json");
		expect(res.headers.get("x-request-id")).toBeTruthy();
	});

	it("answers malformed bodies with a 400 problem listing the fields", async () => {
		const res = await call("/v1/admin/keys", { method: "POST", headers: ADMIN, body: JSON.stringify({ name: "" }) });
		expect(res.status).toBe(400);
		const body = (await res.json()) as { code: string; errors: { path: string }[] };
		expect(body.code).toBe("invalid_request");
		expect(body.errors[0]?.path).toBe("json.name");
	});

	it("answers broken JSON, unknown routes and wrong methods with problems", async () => {
		const broken = await call("/v1/admin/keys", { method: "POST", headers: ADMIN, body: "{" });
		expect(broken.status).toBe(400);
		const unknown = await call("/v1/nothing");
		expect(unknown.status).toBe(404);
		expect(unknown.headers.get("content-type")).toBe("application/problem+json");
		const wrong = await call("/v1/admin/keys", { method: "PATCH", headers: ADMIN });
		expect(wrong.status).toBe(405);
		expect(wrong.headers.get("allow")).toContain("GET");
	});
});

describe("service", () => {
	it("serves healthz, openapi and docs", async () => {
		expect((await call("/healthz")).status).toBe(200);
		const doc = (await (await call("/openapi.json")).json()) as { openapi: string; paths: Record<string, unknown> };
		expect(doc.openapi).toBe("3.1.0");
		expect(Object.keys(doc.paths)).toContain("/v1/admin/keys");
		const docs = await call("/docs");
		expect(docs.headers.get("content-type")).toContain("text/html");
	});
});
