/**
 * Security headers on every kind of response the Worker writes, and CORS as configured. CORS runs the real app
 * (src/index.ts) with the test bindings plus a non-wildcard `CORS_ORIGINS`, the way a deployment overrides a var.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { app } from "../../src/index";
import { call, ORIGIN } from "../helpers/api";
import { drain, label, makeTenant, openApiOperations, type Tenant } from "../helpers/security";

let t: Tenant;
beforeAll(async () => {
	t = await makeTenant("headers", "pod-headers");
});

function expectSecurityHeaders(res: Response, what: string): void {
	const h = res.headers;
	expect(h.get("x-content-type-options"), what).toBe("nosniff");
	expect(h.get("referrer-policy"), what).toBe("no-referrer");
	expect(h.get("strict-transport-security"), what).toBe("max-age=31536000; includeSubDomains");
	const framing =
		h.get("x-frame-options") === "DENY" || /frame-ancestors 'none'/.test(h.get("content-security-policy") ?? "");
	expect(framing, `${what}: framing allowed`).toBe(true);
	expect(h.get("x-request-id"), what).toBeTruthy();
}

describe("security headers", () => {
	const cases: [string, () => Promise<Response>][] = [
		["a job (authenticated JSON)", () => call(`/v1/jobs/${t.jobId}`, { headers: t.auth })],
		["the job list", () => call("/v1/jobs", { headers: t.auth })],
		["a 401 problem", () => call("/v1/jobs")],
		["a 400 problem", () => call("/v1/jobs?limit=0", { headers: t.auth })],
		["a 404 problem (unknown route)", () => call("/v1/nothing-here")],
		["a 404 problem (unknown job)", () => call("/v1/jobs/job_doesnotexist", { headers: t.auth })],
		["a 405 problem", () => call("/v1/admin/keys", { method: "PATCH" })],
		["the video", () => call(`/v1/jobs/${t.jobId}/video`, { headers: t.auth })],
		["a range of the video", () => call(`/v1/jobs/${t.jobId}/video`, { headers: { ...t.auth, range: "bytes=0-9" } })],
		["the event stream", () => call(`/v1/jobs/${t.jobId}/events`, { headers: t.auth })],
		["a share link", () => call(t.shareUrl)],
		["a refused share link", () => call(t.shareUrl.replace(/sig=[^&]+/, "sig=AAAA"))],
		["a signed storage GET", () => call(t.backendUrls.inputs.image ?? "")],
		["/healthz", () => call("/healthz")],
		["/openapi.json", () => call("/openapi.json")],
		["/docs", () => call("/docs")],
	];

	it.each(cases)("%s", async (what, send) => {
		const res = await send();
		await drain(res);
		expect(res.status, what).toBeLessThan(500);
		expectSecurityHeaders(res, what);
	});

	it("every GET without parameters in /openapi.json carries them, with and without a key", async () => {
		for (const op of (await openApiOperations()).filter((o) => o.method === "GET" && o.params.length === 0)) {
			for (const headers of [{}, t.auth]) {
				const res = await call(op.path, { headers });
				await drain(res);
				expectSecurityHeaders(res, label(op));
			}
		}
	});

	it("authenticated JSON is never cached: Cache-Control no-store", async () => {
		for (const path of [
			`/v1/jobs/${t.jobId}`,
			"/v1/jobs",
			`/v1/uploads/${t.readyUpload}`,
			"/v1/usage",
			"/v1/webhooks/secret",
		]) {
			const res = await call(path, { headers: t.auth });
			expect(res.headers.get("content-type"), path).toMatch(/json/);
			expect(res.headers.get("cache-control"), path).toBe("no-store");
			await res.arrayBuffer();
		}
		const admin = await call("/v1/admin/keys", { headers: { authorization: "Bearer test-admin-token" } });
		expect(admin.headers.get("cache-control")).toBe("no-store");
		await admin.arrayBuffer();
	});

	it("JSON forbids every subresource; /docs runs scripts of its own origin alone, videos still play in a tab", async () => {
		for (const res of [await call(`/v1/jobs/${t.jobId}`, { headers: t.auth }), await call("/v1/jobs")]) {
			await res.arrayBuffer();
			expect(res.headers.get("content-security-policy")).toBe("default-src 'none'; frame-ancestors 'none'");
		}
		// A share link opened in a tab plays in the browser's own media page: only framing is refused.
		const video = await call(t.shareUrl);
		await video.arrayBuffer();
		expect(video.headers.get("content-security-policy")).toBe("frame-ancestors 'none'");
		const docs = await call("/docs");
		expect(docs.status).toBe(200);
		const page = await docs.text();
		expect(page).not.toContain("<script>");
		const csp = docs.headers.get("content-security-policy") ?? "";
		expect(csp).toContain("default-src 'none'");
		expect(csp).toContain("script-src 'self'");
		expect(csp).toContain("frame-ancestors 'none'");
	});
});

const ALLOWED = "https://app.example.com";
const ALSO_ALLOWED = "https://admin.example.com";
const DENIED = "https://evil.example.net";

/** The real app with `CORS_ORIGINS` set to two origins, as a deployment would configure it. */
async function corsCall(path: string, init: RequestInit = {}): Promise<Response> {
	const ctx = createExecutionContext();
	const res = await app.fetch(
		new Request(`${ORIGIN}${path}`, init),
		{ ...env, CORS_ORIGINS: `${ALLOWED}, ${ALSO_ALLOWED}` },
		ctx,
	);
	await waitOnExecutionContext(ctx);
	return res;
}

describe("CORS with an allowlist", () => {
	it.each([ALLOWED, ALSO_ALLOWED])(
		"echoes the allowed origin %s with Vary: Origin, on answers and problems",
		async (origin) => {
			for (const [path, headers] of [
				[`/v1/jobs/${t.jobId}`, t.auth],
				["/v1/jobs", {}],
				["/v1/nothing", {}],
			] as const) {
				const res = await corsCall(path, { headers: { ...headers, origin } });
				await res.arrayBuffer();
				expect(res.headers.get("access-control-allow-origin"), path).toBe(origin);
				expect(res.headers.get("access-control-expose-headers"), path).toContain("x-request-id");
				expect(res.headers.get("vary")?.toLowerCase(), path).toContain("origin");
				expect(res.headers.get("access-control-allow-credentials"), path).toBeNull();
			}
		},
	);

	it.each([DENIED, "null", `${ALLOWED}.evil.net`, ALLOWED.replace("https", "http"), `${ALLOWED}:8443`])(
		"gives %s no CORS headers, still Vary: Origin",
		async (origin) => {
			const res = await corsCall(`/v1/jobs/${t.jobId}`, { headers: { ...t.auth, origin } });
			expect(res.status).toBe(200);
			await res.arrayBuffer();
			expect(res.headers.get("access-control-allow-origin")).toBeNull();
			expect(res.headers.get("access-control-expose-headers")).toBeNull();
			expect(res.headers.get("vary")?.toLowerCase()).toContain("origin");
		},
	);

	const preflight = (origin: string) =>
		corsCall("/v1/jobs", {
			method: "OPTIONS",
			headers: {
				origin,
				"access-control-request-method": "POST",
				"access-control-request-headers": "authorization, content-type, idempotency-key",
			},
		});

	it("answers an allowed preflight with 204 and the allowed methods and headers", async () => {
		const res = await preflight(ALLOWED);
		expect(res.status).toBe(204);
		expect(res.headers.get("access-control-allow-origin")).toBe(ALLOWED);
		expect(res.headers.get("access-control-allow-methods")).toContain("POST");
		expect(res.headers.get("access-control-allow-headers")).toContain("authorization");
		expect(res.headers.get("vary")?.toLowerCase()).toContain("origin");
		expectSecurityHeaders(res, "preflight");
	});

	it("answers a disallowed preflight with a problem and no CORS headers", async () => {
		const res = await preflight(DENIED);
		expect(res.status).toBeGreaterThanOrEqual(400);
		expect(res.status).toBeLessThan(500);
		expect(res.headers.get("content-type")).toBe("application/problem+json");
		await res.arrayBuffer();
		for (const h of ["access-control-allow-origin", "access-control-allow-methods", "access-control-allow-headers"]) {
			expect(res.headers.get(h), h).toBeNull();
		}
	});

	it('with the default "*" any origin is echoed (the test bindings\' setting)', async () => {
		const res = await call("/v1/jobs", { headers: { origin: DENIED } });
		await res.arrayBuffer();
		expect(res.headers.get("access-control-allow-origin")).toBe(DENIED);
	});
});
