/**
 * Tenant isolation, driven by the live `/openapi.json`: every operation whose path takes a parameter is called
 * with account B's key and account A's ids. Key routes must answer exactly what they answer for an id that does
 * not exist (404, nothing revealed), admin routes refuse the key, signed routes refuse the unsigned request. A route
 * added later with a parameter this file cannot fill fails the sweep until it is mapped below.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { call } from "../helpers/api";
import { record } from "../helpers/job-object";
import {
	bearer,
	drain,
	fill,
	label,
	makeTenant,
	newKey,
	type Operation,
	openApiOperations,
	request,
	type Tenant,
} from "../helpers/security";

let a: Tenant;
let b: { key: string; auth: Record<string, string> };
let ops: Operation[];

beforeAll(async () => {
	a = await makeTenant("tenant-a", "pod-tenants");
	b = await newKey("tenant-b");
	ops = (await openApiOperations()).filter((o) => !SHARED_PATHS.includes(o.path));
});

/** Paths whose parameter names something every account sees alike (the model catalog): nothing of A's to hide. */
const SHARED_PATHS = ["/v1/models/{id}"];

/** Another id of the same shape that names nothing. */
const ghost = (id: string): string => `${id.slice(0, -1)}${id.endsWith("z") ? "y" : "z"}`;

/**
 * How to name A's resources in each parameterised path, keyed by the path up to its last parameter. Each entry
 * lists variants (e.g. a ready and a pending upload), every one of which must be hidden.
 */
const RESOURCES: Record<string, (t: Tenant) => Record<string, string>[]> = {
	"/v1/jobs/{id}": (t) => [{ id: t.jobId }, { id: t.queuedJobId }],
	"/v1/uploads/{id}": (t) => [{ id: t.readyUpload }, { id: t.pendingUpload }],
	"/v1/share/{job_id}": (t) => [{ job_id: t.jobId }],
	"/v1/internal/runpod/{job_id}": (t) => [{ job_id: t.jobId }],
	"/v1/storage/{key}": (t) => [
		{ key: `uploads/${t.account}/${t.readyUpload}` },
		{ key: `outputs/${t.account}/${t.jobId}/video.mp4` },
	],
};

/** Admin paths are refused to API keys whatever they name; their parameters are filled by name. */
const ADMIN_PARAMS: Record<string, (t: Tenant) => string> = {
	id: (t) => t.keyId,
	name: () => "pod-tenants",
	account: (t) => t.account,
	upload_id: () => "no-such-upload",
	part_number: () => "1",
};

function variantsFor(op: Operation, t: Tenant): Record<string, string>[] {
	if (op.path.startsWith("/v1/admin/")) {
		const values: Record<string, string> = {};
		for (const p of op.params) {
			const value = ADMIN_PARAMS[p];
			if (!value) throw new Error(`${label(op)}: add {${p}} to ADMIN_PARAMS`);
			values[p] = value(t);
		}
		return [values];
	}
	const prefix = op.path.slice(0, op.path.lastIndexOf("}") + 1);
	const resolve = RESOURCES[prefix];
	if (!resolve) throw new Error(`${label(op)}: add "${prefix}" to RESOURCES (how to name A's resource)`);
	return resolve(t);
}

/** What a response says, with the tried id and the request id normalised, so two answers can be compared. */
async function answer(res: Response, value: string) {
	const text = await drain(res);
	let code: string | undefined;
	let detail: string | undefined;
	if (res.headers.get("content-type") === "application/problem+json") {
		({ code, detail } = JSON.parse(text) as { code: string; detail: string });
	}
	return {
		status: res.status,
		type: res.headers.get("content-type"),
		code,
		detail: detail?.replaceAll(value, "<id>"),
		text,
	};
}

describe("tenant isolation across every parameterised route in /openapi.json", () => {
	it("lists the routes this sweep needs (a sanity check on the enumeration)", () => {
		const labels = ops.filter((o) => o.params.length > 0).map(label);
		expect(labels).toEqual(
			expect.arrayContaining([
				"GET /v1/jobs/{id}",
				"GET /v1/jobs/{id}/video",
				"GET /v1/jobs/{id}/events",
				"POST /v1/jobs/{id}/cancel",
				"POST /v1/jobs/{id}/share",
				"GET /v1/uploads/{id}",
				"POST /v1/uploads/{id}/complete",
				"DELETE /v1/admin/keys/{id}",
			]),
		);
	});

	it("B's key gets, for each of A's ids, what it gets for an id that does not exist: 404 on key routes", async () => {
		const failures: string[] = [];
		const secrets = [a.webhookSecret, new URL(a.shareUrl).searchParams.get("sig") ?? "", a.key];
		let swept = 0;
		for (const op of ops.filter((o) => o.params.length > 0)) {
			for (const values of variantsFor(op, a)) {
				const path = fill(op.path, values);
				const seen = await answer(await request(op, path, bearer(b.key)), Object.values(values).join(""));
				swept++;
				const where = `${label(op)} ${path}`;
				if (seen.type !== "application/problem+json") failures.push(`${where}: ${seen.status} ${seen.type}`);
				if (secrets.some((s) => s && seen.text.includes(s))) failures.push(`${where}: leaks a secret of A`);
				if (op.security === "adminToken") {
					if (seen.status !== 401 && seen.status !== 403) failures.push(`${where}: admin route gave ${seen.status}`);
					continue;
				}
				if (op.security === "apiKey" && (seen.status !== 404 || seen.code !== "not_found")) {
					failures.push(`${where}: ${seen.status} ${seen.code}, expected 404 not_found`);
				}
				if (op.security === "none" && seen.status < 400) failures.push(`${where}: unsigned request got ${seen.status}`);
				// No oracle: A's real id must read exactly like an id that names nothing.
				const ghostValues = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, ghost(v)]));
				const ghostSeen = await answer(
					await request(op, fill(op.path, ghostValues), bearer(b.key)),
					Object.values(ghostValues).join(""),
				);
				const strip = ({ text: _t, ...rest }: typeof seen) => rest;
				if (JSON.stringify(strip(seen)) !== JSON.stringify(strip(ghostSeen))) {
					failures.push(`${where}: differs from a missing id: ${JSON.stringify([strip(seen), strip(ghostSeen)])}`);
				}
			}
		}
		expect(failures).toEqual([]);
		expect(swept).toBeGreaterThanOrEqual(14);
	});

	it("B's attempts changed nothing of A's", async () => {
		const pending = (await (await call(`/v1/uploads/${a.pendingUpload}`, { headers: a.auth })).json()) as {
			status: string;
		};
		expect(pending.status).toBe("pending");
		expect((await record(a.queuedJobId)).status).not.toBe("canceled");
		expect((await call(a.shareUrl)).status).toBe(200);
		const keys = (await (
			await call("/v1/admin/keys", { headers: { authorization: "Bearer test-admin-token" } })
		).json()) as {
			data: { id: string; revoked_at: string | null }[];
		};
		expect(keys.data.find((k) => k.id === a.keyId)?.revoked_at).toBeNull();
	});

	it("with A's own key the same key-route requests are not 404 (so the sweep above can fail)", async () => {
		for (const op of ops.filter((o) => o.params.length > 0 && o.security === "apiKey")) {
			for (const values of variantsFor(op, a)) {
				const res = await request(op, fill(op.path, values), bearer(a.key));
				await drain(res);
				expect(res.status, `${label(op)} ${JSON.stringify(values)}`).not.toBe(404);
			}
		}
	});
});

describe("listings never show A's items to B", () => {
	const markers = (t: Tenant) => [t.account, t.jobId, t.queuedJobId, t.readyUpload, t.pendingUpload, t.keyId];

	it("every key-authenticated GET without parameters in /openapi.json, with B's key, mentions nothing of A", async () => {
		const listings = ops.filter((o) => o.method === "GET" && o.security === "apiKey" && o.params.length === 0);
		expect(listings.map(label)).toEqual(expect.arrayContaining(["GET /v1/jobs", "GET /v1/usage"]));
		for (const op of listings) {
			const res = await call(op.path, { headers: b.auth });
			const text = await res.text();
			expect(res.status, `${label(op)}: ${text.slice(0, 200)}`).toBeLessThan(500);
			for (const m of markers(a)) expect(text, `${label(op)} mentions ${m}`).not.toContain(m);
		}
	});

	it("A sees its jobs and usage, B none of them, not even with A's cursor or a status filter", async () => {
		const mine = (await (await call("/v1/jobs", { headers: a.auth })).json()) as { data: { id: string }[] };
		expect(mine.data.map((j) => j.id)).toEqual(expect.arrayContaining([a.jobId, a.queuedJobId]));
		const page = (await (await call("/v1/jobs?limit=1", { headers: a.auth })).json()) as { next_cursor: string };
		expect(page.next_cursor).toBeTruthy();
		for (const query of [`?cursor=${encodeURIComponent(page.next_cursor)}`, "?status=succeeded", "?status=queued"]) {
			const res = await call(`/v1/jobs${query}`, { headers: b.auth });
			expect(res.status).toBeLessThan(500);
			const text = await res.text();
			for (const m of markers(a)) expect(text, `${query} mentions ${m}`).not.toContain(m);
		}
		const usage = async (auth: Record<string, string>) =>
			((await (await call("/v1/usage", { headers: auth })).json()) as { totals: { jobs: number } }).totals.jobs;
		expect(await usage(a.auth)).toBeGreaterThan(0);
		expect(await usage(b.auth)).toBe(0);
	});
});
