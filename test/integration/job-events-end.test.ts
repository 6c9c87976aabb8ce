// The end of a job's event stream: what a resume at or past the last event gets, and the succeeded job's share link.
import { describe, expect, it } from "vitest";
import { relayTransfers } from "../emulators/pod/harness";
import { call, newAccount } from "../helpers/api";
import { stepUntil } from "../helpers/job-object";
import { runToSuccess, startJob } from "../helpers/notify";

interface Frame {
	id: string;
	event: string;
	data: { status: string; share_url?: string };
}

function frames(text: string): Frame[] {
	return text
		.split("\n\n")
		.filter((f) => f.trim() && !f.startsWith(":"))
		.map((f) => {
			const field = (name: string) =>
				f
					.split("\n")
					.find((l) => l.startsWith(`${name}: `))
					?.slice(name.length + 2) ?? "";
			return { id: field("id"), event: field("event"), data: JSON.parse(field("data")) };
		});
}

async function events(auth: Record<string, string>, jobId: string, lastEventId?: string) {
	const res = await call(`/v1/jobs/${jobId}/events`, {
		headers: { ...auth, ...(lastEventId === undefined ? {} : { "last-event-id": lastEventId }) },
	});
	return { status: res.status, frames: frames(await res.text()) };
}

describe("the end of a job's event stream", () => {
	it("answers 204 to a resume at or past a finished job's last event, and the rest before it", async () => {
		const auth = await newAccount("sse-end");
		const id = await startJob(auth, "pod-sse-end");
		await runToSuccess(id);
		const all = await events(auth, id, "0");
		expect(all.status).toBe(200);
		const last = Number(all.frames.at(-1)?.id);
		expect(last).toBeGreaterThan(1);
		for (const past of [last, last + 1, last + 1000]) {
			const resumed = await events(auth, id, String(past));
			expect([past, resumed.status, resumed.frames]).toEqual([past, 204, []]);
		}
		const before = await events(auth, id, String(last - 1));
		expect(before.status).toBe(200);
		expect(before.frames.map((f) => Number(f.id))).toEqual([last]);
	});

	it("gives a running job's current state to an id it never sent", async () => {
		const auth = await newAccount("sse-ahead");
		const id = await startJob(auth, "pod-sse-ahead");
		const running = await stepUntil(id, (j) => j.status === "running");
		const reader = (
			await call(`/v1/jobs/${id}/events`, { headers: { ...auth, "last-event-id": "999" } })
		).body?.getReader();
		const first = await reader?.read();
		await reader?.cancel();
		const [frame] = frames(new TextDecoder().decode(first?.value));
		expect(frame?.data.status).toBe("running");
		await relayTransfers(running.remote_id ?? "");
		await stepUntil(id, (j) => j.status === "succeeded");
	});

	it("carries the share link on a succeeded job's event, live or replayed, as GET does", async () => {
		const auth = await newAccount("sse-share");
		const id = await startJob(auth, "pod-sse-share");
		const live = call(`/v1/jobs/${id}/events`, { headers: auth }).then(async (r) => frames(await r.text()));
		await runToSuccess(id);
		const end = (await live).at(-1);
		expect(end?.data.status).toBe("succeeded");
		expect(end?.data.share_url).toMatch(new RegExp(`/v1/share/${id}/video\\.mp4\\?`));
		const replayed = (await events(auth, id)).frames.at(-1);
		expect(replayed?.data.share_url).toMatch(/\/v1\/share\//);
		// Earlier events are as they were: only a succeeded job has a link.
		expect((await events(auth, id, "0")).frames.slice(0, -1).every((f) => f.data.share_url === undefined)).toBe(true);
		const played = await call(end?.data.share_url ?? "");
		expect(played.status).toBe(200);
		expect(played.headers.get("content-type")).toBe("video/mp4");
		await played.arrayBuffer();
		const got = (await (await call(`/v1/jobs/${id}`, { headers: auth })).json()) as { share_url?: string };
		expect(got.share_url).toMatch(/\/v1\/share\//);
	});
});
