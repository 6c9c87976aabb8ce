import { describe, expect, it } from "vitest";
import { initialState, type JobState, transition } from "../../src/jobs/state";

const at = "2026-01-01T00:00:00.000Z";

function apply(state: JobState, ...events: Parameters<typeof transition>[1][]): JobState {
	let s = state;
	for (const e of events) {
		const r = transition(s, e);
		if (!r.ok) throw new Error(r.reason);
		s = r.state;
	}
	return s;
}

describe("progress", () => {
	it("never goes backwards within a run, but keeps the newest stage and message", () => {
		const s = apply(
			initialState(),
			{ type: "submitted", remoteId: "r1" },
			{ type: "progress", at, progress: { percent: 60, stage: "sampling", message: "step 3/4" } },
			{ type: "progress", at, progress: { percent: 10, stage: "encoding", message: "muxing" } },
		);
		expect(s.progress).toEqual({ percent: 60, stage: "encoding", message: "muxing" });
	});

	it("starts over after a resubmission", () => {
		const s = apply(
			initialState(),
			{ type: "submitted", remoteId: "r1" },
			{ type: "progress", at, progress: { percent: 80, stage: "sampling" } },
			{ type: "lost" },
			{ type: "submitted", remoteId: "r2" },
			{ type: "progress", at, progress: { percent: 5, stage: "downloading" } },
		);
		expect(s.progress).toEqual({ percent: 5, stage: "downloading" });
		expect(s.attempts).toBe(2);
	});
});
