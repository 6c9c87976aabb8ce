/**
 * The status read's path: job ids carry a tag binding them to their account, so reading one's own job needs no
 * index lookup, and the job's Durable Object is read beside the key's gate. Ownership, revocation and the rate
 * limit's answer must be exactly what they were.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { accessLogged, SLOW_READ_MS } from "../../src/app";
import { tagSaysOwnedBy } from "../../src/jobs/job-id";
import { putPodBackend } from "../emulators/pod/harness";
import { ADMIN, call, PNG, upload } from "../helpers/api";
import { captureConsole, expectProblem, newKey } from "../helpers/security";

async function createdJob(auth: Record<string, string>, backend: string): Promise<string> {
	const image = await upload(auth, PNG, "image/png", "still.png");
	const res = await call("/v1/jobs", {
		method: "POST",
		headers: auth,
		body: JSON.stringify({ model: "preview", input: { image, prompt: "read path" }, backend }),
	});
	expect(res.status).toBe(202);
	return ((await res.json()) as { id: string }).id;
}

const read = (id: string, auth: Record<string, string>) => call(`/v1/jobs/${id}`, { headers: auth });

describe("GET /v1/jobs/{id}", () => {
	it("reads a job whose id is tagged for the caller without the index, and 404s it for any other account", async () => {
		expect((await putPodBackend("pod-read-path")).status).toBe(200);
		const owner = await newKey("read-path-owner");
		const other = await newKey("read-path-other");
		const id = await createdJob(owner.auth, "pod-read-path");
		expect(id).toMatch(/^job_[a-z0-9]{32}$/);
		expect(await tagSaysOwnedBy(env.SIGNING_SECRET, id, "read-path-owner")).toBe(true);
		expect(await tagSaysOwnedBy(env.SIGNING_SECRET, id, "read-path-other")).toBe(false);

		// With the index row gone, only the tag can say whose the job is.
		await env.DB.prepare("DELETE FROM jobs WHERE id = ?").bind(id).run();
		for (let i = 0; i < 2; i++) {
			const res = await read(id, owner.auth);
			expect(res.status).toBe(200);
			expect(((await res.json()) as { id: string }).id).toBe(id);
			expect(res.headers.get("ratelimit")).toMatch(/^"requests";r=\d+/);
		}
		await expectProblem(await read(id, other.auth), 404, "not_found");
		// A tag moved onto another random part is no tag: the index decides, and has nothing.
		const forged = `job_${"0".repeat(20)}${id.slice(-12)}`;
		await expectProblem(await read(forged, owner.auth), 404, "not_found");
	});

	it("refuses a revoked key at once, though its account was known from the request before", async () => {
		expect((await putPodBackend("pod-read-revoke")).status).toBe(200);
		const owner = await newKey("read-path-revoke");
		const id = await createdJob(owner.auth, "pod-read-revoke");
		expect((await read(id, owner.auth)).status).toBe(200);
		expect((await call(`/v1/admin/keys/${owner.id}`, { method: "DELETE", headers: ADMIN })).status).toBe(200);
		await expectProblem(await read(id, owner.auth), 401, "unauthorized");
		// The gate's refusal wins over the route's own 400 for a malformed id, as before.
		await expectProblem(await read("x".repeat(80), owner.auth), 401, "unauthorized");
	});

	it("reads jobs with untagged ids (made before tags) through the index", async () => {
		expect((await putPodBackend("pod-read-old")).status).toBe(200);
		const owner = await newKey("read-path-old");
		const other = await newKey("read-path-old-other");
		const tagged = await createdJob(owner.auth, "pod-read-old");
		const untagged = tagged.slice(0, "job_".length + 20);
		const job = await env.JOBS.getByName(tagged).get();
		if (!job) throw new Error("job missing");
		await env.JOBS.getByName(untagged).create({ ...job.spec, id: untagged });
		const row = await env.DB.prepare("SELECT account_id FROM jobs WHERE id = ?").bind(untagged).first();
		expect(row?.account_id).toBe("read-path-old");
		expect((await read(untagged, owner.auth)).status).toBe(200);
		await expectProblem(await read(untagged, other.auth), 404, "not_found");
	});

	it("answers the status read with the job's snapshot: what its record shows, without the spec's inputs", async () => {
		expect((await putPodBackend("pod-read-snapshot")).status).toBe(200);
		const owner = await newKey("read-path-snapshot");
		const id = await createdJob(owner.auth, "pod-read-snapshot");
		const job = await env.JOBS.getByName(id).get();
		const snapshot = await env.JOBS.getByName(id).snapshot();
		expect(snapshot?.account_id).toBe("read-path-snapshot");
		expect(snapshot).toMatchObject({ id, status: job?.status, model: job?.spec.model, attempts: job?.attempts });
		// The spec's inputs and routing stay in the object.
		expect(JSON.stringify(snapshot)).not.toContain("object_key");
		expect(await env.JOBS.getByName("job_none").snapshot()).toBeNull();
	});
});

describe("the access log", () => {
	it("writes no line for a successful read, and one for every write and every refusal", async () => {
		expect((await putPodBackend("pod-read-log")).status).toBe(200);
		const owner = await newKey("read-path-log");
		const id = await createdJob(owner.auth, "pod-read-log");
		const capture = captureConsole();
		try {
			expect((await read(id, owner.auth)).status).toBe(200);
			expect((await call("/healthz")).status).toBe(200);
			await expectProblem(await read(`job_${"0".repeat(32)}`, owner.auth), 404, "not_found");
			await expectProblem(await call(`/v1/jobs/${id}`), 401, "unauthorized");
			expect((await call(`/v1/jobs/${id}/cancel`, { method: "POST", headers: owner.auth })).status).toBe(200);
		} finally {
			capture.restore();
		}
		const requests = capture.lines
			.map((l) => JSON.parse(l.slice(l.indexOf("{"))) as { event?: string; method?: string; status?: number })
			.filter((l) => l.event === "request")
			.map((l) => `${l.method} ${l.status}`);
		expect(requests).toEqual(["GET 404", "GET 401", "POST 200"]);
	});

	it("logs a read that succeeded slowly, and never skips a write", () => {
		expect(accessLogged("GET", 200, SLOW_READ_MS - 1)).toBe(false);
		expect(accessLogged("HEAD", 206, 0)).toBe(false);
		expect(accessLogged("GET", 200, SLOW_READ_MS)).toBe(true);
		expect(accessLogged("GET", 304, SLOW_READ_MS + 1)).toBe(true);
		expect(accessLogged("GET", 429, 0)).toBe(true);
		for (const method of ["POST", "PUT", "DELETE", "PATCH"]) expect(accessLogged(method, 200, 0)).toBe(true);
	});
});
