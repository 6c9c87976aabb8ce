/**
 * What the shared machinery answers to bad requests, whichever route gets them: oversized, malformed or mistyped
 * JSON bodies, bad path parameters and wrong methods are 4xx problems, and /openapi.json declares those statuses
 * on every route they can reach (the fuzz suite, test/fuzz, drives the same rules against the running stack).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { MAX_JSON_BODY_BYTES } from "../../src/lib/json-body-limit";
import { ADMIN, call, newAccount } from "../helpers/api";

let auth: Record<string, string>;
beforeAll(async () => {
	auth = await newAccount("request-bodies");
});

async function expectProblem(res: Response, status: number, code: string) {
	expect(res.status).toBe(status);
	expect(res.headers.get("content-type")).toBe("application/problem+json");
	const body = (await res.json()) as { status: number; code: string };
	expect(body).toMatchObject({ status, code });
}

/** A JSON object whose serialization is just over `bytes` long. */
const oversized = (bytes: number) => JSON.stringify({ name: "x".repeat(bytes) });

describe("JSON request bodies", () => {
	it("refuses a body over the limit with 413, by its Content-Length", async () => {
		const res = await call("/v1/admin/keys", { method: "POST", headers: ADMIN, body: oversized(MAX_JSON_BODY_BYTES) });
		await expectProblem(res, 413, "payload_too_large");
	});

	it("refuses a streamed body (no Content-Length) once it passes the limit", async () => {
		const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
		let sent = 0;
		const body = new ReadableStream<Uint8Array>({
			pull(controller) {
				if (sent === 0) controller.enqueue(new TextEncoder().encode('{"name":"'));
				if (sent > 2 * MAX_JSON_BODY_BYTES) return controller.close();
				controller.enqueue(chunk);
				sent += chunk.length;
			},
		});
		const res = await call("/v1/jobs", {
			method: "POST",
			headers: auth,
			body,
			// @ts-expect-error: a streamed request body needs `duplex` (not in the Workers RequestInit types).
			duplex: "half",
		});
		await expectProblem(res, 413, "payload_too_large");
	});

	it("accepts a body under the limit", async () => {
		const res = await call("/v1/admin/keys", { method: "POST", headers: ADMIN, body: JSON.stringify({ name: "ok" }) });
		expect(res.status).toBe(201);
	});

	it("answers malformed JSON with 400 and another content type with 415", async () => {
		await expectProblem(
			await call("/v1/jobs", { method: "POST", headers: auth, body: '{"model":' }),
			400,
			"invalid_request",
		);
		const plain = { ...auth, "content-type": "text/plain" };
		await expectProblem(
			await call("/v1/jobs", { method: "POST", headers: plain, body: '{"model":"preview"}' }),
			415,
			"unsupported_media_type",
		);
	});
});

describe("path parameters and methods", () => {
	it("answers a job id of unicode, bad percent-encoding or over-long with a 4xx problem", async () => {
		for (const id of ["%E2%9C%93%F0%9F%98%80", "%E2%9C", "%zz", "0".repeat(65)]) {
			const res = await call(`/v1/jobs/${id}`, { headers: auth });
			expect([400, 404], id).toContain(res.status);
			expect(res.headers.get("content-type"), id).toBe("application/problem+json");
		}
	});

	it("answers a known path with another method with 405 and Allow", async () => {
		const res = await call("/v1/jobs", { method: "PATCH", headers: auth });
		await expectProblem(res, 405, "method_not_allowed");
		expect(res.headers.get("allow")?.split(", ").sort()).toEqual(["GET", "HEAD", "POST"]);
	});

	it("serves a literal path by its own routes alone, never by a templated route it fits", async () => {
		// /v1/uploads/inline is POST only, though GET /v1/uploads/{id} would take the id "inline".
		for (const method of ["GET", "HEAD", "OPTIONS", "DELETE"]) {
			const res = await call("/v1/uploads/inline", { method, headers: auth });
			expect(res.status, method).toBe(405);
			expect(res.headers.get("allow"), method).toBe("POST");
		}
	});

	it("matches a parameter's own pattern too: a storage key spans path segments", async () => {
		const res = await call("/v1/storage/uploads/acct/upl_x/image.png", { method: "DELETE" });
		await expectProblem(res, 405, "method_not_allowed");
		expect(res.headers.get("allow")?.split(", ").sort()).toEqual(["GET", "HEAD", "POST", "PUT"]);
		// A literal dot in a route is a dot: /openapi.json does not stand for /openapiXjson.
		await expectProblem(await call("/openapiXjson", { method: "POST" }), 404, "not_found");
	});
});

describe("/openapi.json", () => {
	interface Operation {
		parameters?: unknown[];
		requestBody?: unknown;
		security?: Record<string, string[]>[];
		responses: Record<string, unknown>;
	}

	it("declares the problems the shared machinery answers on every route they can reach", async () => {
		const doc = (await (await call("/openapi.json")).json()) as { paths: Record<string, Record<string, Operation>> };
		const missing: string[] = [];
		for (const [path, ops] of Object.entries(doc.paths)) {
			for (const [method, op] of Object.entries(ops)) {
				const want: string[] = [];
				if (op.parameters?.length || op.requestBody) want.push("400");
				if (op.requestBody) want.push("413", "415");
				// The body limit counts a body sent where none is declared too.
				else if (["post", "put", "patch"].includes(method)) want.push("413");
				if (op.security?.some((s) => Object.keys(s).length > 0)) want.push("401", "403");
				for (const status of want)
					if (!(status in op.responses)) missing.push(`${method.toUpperCase()} ${path}: ${status}`);
			}
		}
		expect(missing).toEqual([]);
		// A storage key with an encoded line break matches no route: the 404 it gets is declared.
		expect(doc.paths["/v1/storage/{key}"]?.put?.responses).toHaveProperty("404");
	});
});
