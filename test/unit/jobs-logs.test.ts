import { describe, expect, it } from "vitest";
import { cleanText, LOG_LINE_CHARS, mergeLog, workerEntry } from "../../src/jobs/logs";

describe("cleanText", () => {
	it("drops URLs' queries and replaces keys, webhook secrets, bearer tokens and key=value secrets", () => {
		const text =
			"PUT https://r2.example/out.mp4?X-Amz-Signature=abc&X-Amz-Credential=k failed; " +
			"key rg_live_abc123 secret whsec_c2VjcmV0 Authorization: Bearer eyJ.x.y api_key=sk-123 password: hunter2";
		const clean = cleanText(text);
		expect(clean).toContain("https://r2.example/out.mp4 failed");
		for (const leak of ["X-Amz", "rg_live_abc123", "whsec_c2VjcmV0", "eyJ.x.y", "sk-123", "hunter2"]) {
			expect(clean).not.toContain(leak);
		}
	});

	it("caps a line", () => {
		expect(cleanText("x".repeat(5000))).toHaveLength(LOG_LINE_CHARS);
	});
});

describe("worker lines", () => {
	it("reads the worker's JSON lines and refuses anything else", () => {
		const entry = workerEntry(JSON.stringify({ ts: 1767225600.5, event: "job_failed", job_id: "j", code: "cuda_oom" }));
		expect(entry).toEqual({
			at: "2026-01-01T00:00:00.500Z",
			source: "worker",
			event: "job_failed",
			fields: { code: "cuda_oom" },
		});
		expect(workerEntry("not json")).toBeNull();
		expect(workerEntry(JSON.stringify({ event: "no time" }))).toBeNull();
	});

	it("merges steps and lines by time", () => {
		const merged = mergeLog(
			[{ at: "2026-01-01T00:00:02.000Z", source: "service", event: "succeeded" }],
			[{ at: "2026-01-01T00:00:01.000Z", source: "worker", event: "job_started" }],
		);
		expect(merged.map((e) => e.event)).toEqual(["job_started", "succeeded"]);
	});
});
