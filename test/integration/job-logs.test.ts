/** `GET /v1/jobs/{id}/logs`: the job's steps and the GPU worker's lines about it, cleaned, read as a client would. */
import { beforeAll, describe, expect, it } from "vitest";
import { call, newAccount } from "../helpers/api";
import { runToSuccess, startJob } from "../helpers/notify";

interface LogEntry {
	at: string;
	source: "service" | "worker";
	event: string;
	status?: string;
	message?: string;
	fields?: Record<string, unknown>;
}

let auth: Record<string, string>;
let other: Record<string, string>;
beforeAll(async () => {
	auth = await newAccount("logs");
	other = await newAccount("logs-other");
});

describe("GET /v1/jobs/{id}/logs", () => {
	it("tells the job's steps and the worker's lines in order, without signed URLs' queries or secrets", async () => {
		const id = await startJob(auth, "pod-logs");
		await runToSuccess(id);
		const res = await call(`/v1/jobs/${id}/logs`, { headers: auth });
		expect(res.status).toBe(200);
		const text = await res.text();
		const { data } = JSON.parse(text) as { data: LogEntry[] };
		const service = data.filter((e) => e.source === "service").map((e) => e.event);
		expect(service[0]).toBe("created");
		expect(service).toEqual(expect.arrayContaining(["submitted", "succeeded"]));
		const worker = data.filter((e) => e.source === "worker");
		// Carried by every status answer, each line is stored once.
		expect(worker.map((e) => e.event)).toEqual(["job_started", "input_fetched"]);
		expect(worker[0]?.fields).toEqual({ model: "preview" });
		expect(worker[1]?.message).toMatch(/^GET http:\/\/[^?\s]+\/v1\/storage\/[^?\s]+ ok$/);
		expect(worker[1]?.fields?.auth).toBe("token= [redacted]");
		expect(text).not.toContain("emu-secret-123");
		expect(text).not.toMatch(/[?&](sig|exp|X-Amz-Signature)=/);
		const times = data.map((e) => e.at);
		expect(times).toEqual([...times].sort());
	});

	it("is the job's own: 404 for another account, 401 without a key", async () => {
		const id = await startJob(auth, "pod-logs");
		expect((await call(`/v1/jobs/${id}/logs`, { headers: other })).status).toBe(404);
		expect((await call(`/v1/jobs/${id}/logs`)).status).toBe(401);
		expect((await call("/v1/jobs/job_nosuchjob/logs", { headers: auth })).status).toBe(404);
		await call(`/v1/jobs/${id}/cancel`, { method: "POST", headers: auth });
	});
});
