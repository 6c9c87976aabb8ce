/**
 * Authentication at the edge, driven by the live `/openapi.json`: a revoked key is refused on its very next
 * request on every key route (events and video included); every admin route takes only the exact admin token;
 * malformed `Authorization` headers get a 401 problem, never a 5xx or HTML.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN, call } from "../helpers/api";
import { stepUntil } from "../helpers/job-object";
import { startJob } from "../helpers/notify";
import {
	bearer,
	drain,
	expectProblem,
	fill,
	label,
	makeTenant,
	newKey,
	type Operation,
	openApiOperations,
	request,
	type Tenant,
} from "../helpers/security";

const ADMIN_TOKEN = "test-admin-token";

let t: Tenant;
let ops: Operation[];

beforeAll(async () => {
	t = await makeTenant("auth-owner", "pod-auth");
	ops = await openApiOperations();
});

/** A's own resources for the key routes; admin paths get harmless names that exist nowhere. */
function pathFor(op: Operation): string {
	const values: Record<string, string> = {};
	for (const p of op.params) {
		if (op.path.startsWith("/v1/admin/")) values[p] = p === "id" ? "key_doesnotexist" : "sec-nothing";
		else if (op.path.startsWith("/v1/jobs/")) values[p] = t.jobId;
		else if (op.path.startsWith("/v1/uploads/")) values[p] = t.readyUpload;
		else if (op.path.startsWith("/v1/models/")) values[p] = "preview";
		else throw new Error(`${label(op)}: add how to fill {${p}} here`);
	}
	return fill(op.path, values);
}

const keyRoutes = () => ops.filter((o) => o.security === "apiKey");
const adminRoutes = () => ops.filter((o) => o.path.startsWith("/v1/admin/"));

describe("a revoked key", () => {
	it("works on every key route, then is refused on the very next request to each (events and video too)", async () => {
		const second = await newKey(t.account);
		const routes = keyRoutes();
		expect(routes.map(label)).toEqual(
			expect.arrayContaining(["GET /v1/jobs/{id}/events", "GET /v1/jobs/{id}/video", "GET /v1/jobs"]),
		);
		for (const op of routes) {
			const res = await request(op, pathFor(op), bearer(second.key));
			await drain(res);
			expect(res.status, `${label(op)} before revocation`).not.toBe(401);
		}
		const revoked = await call(`/v1/admin/keys/${second.id}`, { method: "DELETE", headers: ADMIN });
		expect(revoked.status).toBe(200);
		for (const op of routes) {
			await expectProblem(await request(op, pathFor(op), bearer(second.key)), 401, "unauthorized");
		}
		// The account's other key is untouched.
		expect((await call(`/v1/jobs/${t.jobId}`, { headers: t.auth })).status).toBe(200);
	});

	it("ends an event stream it opened, while another key's stream of the same job stays open", async () => {
		const second = await newKey(t.account);
		const jobId = await startJob(second.auth, "pod-auth-events");
		// Past its submission (which is an event: the queue reason changes), so no event races the revocation.
		await stepUntil(jobId, (j) => j.remote_id !== null);
		const open = async (auth: Record<string, string>) => {
			const res = await call(`/v1/jobs/${jobId}/events`, { headers: auth });
			expect(res.status).toBe(200);
			const reader = res.body?.getReader();
			if (!reader) throw new Error("no body");
			expect(new TextDecoder().decode((await reader.read()).value)).toContain("event: status");
			return reader;
		};
		const [revokedStream, ownerStream] = [await open(second.auth), await open(t.auth)];
		const revoked = await call(`/v1/admin/keys/${second.id}`, { method: "DELETE", headers: ADMIN });
		expect(revoked.status).toBe(200);

		// The guard checks every EVENT_STREAM_REAUTH_MS (200 ms under test): the stream says why, then ends.
		const rest = await readToEnd(revokedStream, 5_000);
		expect(rest.ended, "the revoked key's stream ended").toBe(true);
		expect(rest.text).toContain(": the API key was revoked");
		expect(rest.text).not.toContain("event:");
		// The owner's key still holds its stream open.
		expect((await readToEnd(ownerStream, 1_000)).ended).toBe(false);
		await ownerStream.cancel();
	});
});

/** Reads until the stream ends or `ms` pass; which of the two happened, and the text read. */
async function readToEnd(
	reader: ReadableStreamDefaultReader<Uint8Array>,
	ms: number,
): Promise<{ ended: boolean; text: string }> {
	const decoder = new TextDecoder();
	let text = "";
	const timeout = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), ms));
	for (;;) {
		const next = await Promise.race([reader.read(), timeout]);
		if (next === "timeout") return { ended: false, text };
		if (next.done) return { ended: true, text };
		text += decoder.decode(next.value, { stream: true });
	}
}

describe("admin routes take only the admin token", () => {
	const last = ADMIN_TOKEN.at(-1) === "n" ? "m" : "n";
	const refused: [string, Record<string, string>][] = [
		["no token", {}],
		["an API key", {}],
		["a wrong token", bearer("not-the-admin-token")],
		["the token with its last character changed", bearer(`${ADMIN_TOKEN.slice(0, -1)}${last}`)],
		["the token minus its last character", bearer(ADMIN_TOKEN.slice(0, -1))],
		["the token plus a character", bearer(`${ADMIN_TOKEN}x`)],
		["the token in upper case", bearer(ADMIN_TOKEN.toUpperCase())],
		["the token as Basic", { authorization: `Basic ${btoa(`admin:${ADMIN_TOKEN}`)}` }],
		["the token without a scheme", { authorization: ADMIN_TOKEN }],
	];

	it("lists the admin routes it sweeps", () => {
		expect(adminRoutes().map(label)).toEqual(
			expect.arrayContaining(["POST /v1/admin/keys", "GET /v1/admin/backends", "DELETE /v1/admin/keys/{id}"]),
		);
		// Every admin route declares the admin token in the document.
		for (const op of adminRoutes()) expect(op.security, label(op)).toBe("adminToken");
	});

	it.each(refused)("refuses %s on every /v1/admin/* route with 401", async (name, headers) => {
		const auth = name === "an API key" ? bearer(t.key) : headers;
		for (const op of adminRoutes()) {
			await expectProblem(await request(op, pathFor(op), auth), 401, "unauthorized");
		}
	});

	it("accepts the exact token (any scheme case) on every /v1/admin/* route", async () => {
		for (const scheme of ["Bearer", "bearer"]) {
			for (const op of adminRoutes()) {
				const res = await request(op, pathFor(op), { authorization: `${scheme} ${ADMIN_TOKEN}` });
				const text = await res.text();
				expect([401, 403], `${label(op)}: ${res.status} ${text.slice(0, 200)}`).not.toContain(res.status);
				expect(res.status, label(op)).toBeLessThan(500);
			}
		}
	});
});

describe("malformed Authorization headers", () => {
	const headers: [string, string][] = [
		["Bearer and nothing", "Bearer"],
		["Bearer and spaces", "Bearer    "],
		// workerd sends non-Latin-1 header text as its UTF-8 bytes, as a raw client would.
		["unicode key", "Bearer rg_live_ключ🔑"],
		["latin-1 key", "Bearer rg_live_\u00e9\u00e8\u00ff"],
		["10 KB key", `Bearer rg_live_${"a".repeat(10 * 1024)}`],
		["10 KB of spaces", `Bearer ${" ".repeat(10 * 1024)}x`],
		["Basic credentials", `Basic ${btoa("user:pass")}`],
		["two tokens", "Bearer rg_live_a rg_live_b"],
		["a key-shaped token that names nothing", `Bearer rg_live_${"A".repeat(43)}`],
		["lowercase scheme, wrong key", "bearer rg_live_nope"],
		["a comma-joined pair", "Bearer a, Bearer b"],
		["control characters", "Bearer rg_live_\u0001\u0002"],
	];

	it.each(headers)("%s: 401 problem on every authenticated route", async (_name, value) => {
		// workerd warns once per request about non-ASCII header bytes: one key route and one admin route suffice.
		const nonAscii = [...value].some((ch) => ch.charCodeAt(0) > 0x7e);
		const routes = [...keyRoutes(), ...adminRoutes()];
		for (const op of nonAscii ? [keyRoutes()[0], adminRoutes()[0]].filter((o) => o !== undefined) : routes) {
			const res = await request(op, pathFor(op), { authorization: value });
			await expectProblem(res, 401, "unauthorized");
		}
	});

	it("a valid key with a lowercase scheme works", async () => {
		const res = await call(`/v1/jobs/${t.jobId}`, { headers: { authorization: `bearer ${t.key}` } });
		expect(res.status).toBe(200);
		await res.arrayBuffer();
	});
});
