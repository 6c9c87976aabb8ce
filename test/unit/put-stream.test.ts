import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { putStream, streamExactLength } from "../../src/storage/put-stream";

const bytes = (n: number) => new Uint8Array(n).fill(7);

/** A body of `chunks`, then closed, or broken off (as when a client disconnects mid-upload). */
function bodyOf(chunks: Uint8Array[], breaksOff = false): ReadableStream<Uint8Array> {
	return new ReadableStream<Uint8Array>({
		start(controller) {
			for (const chunk of chunks) controller.enqueue(chunk);
			if (breaksOff) controller.error(new Error("client went away"));
			else controller.close();
		},
	});
}

describe("putStream: the body's length against the declared one", () => {
	it("stores a body of exactly the length", async () => {
		const stored = await putStream(env.BUCKET, "put-stream/exact", bodyOf([bytes(600), bytes(401)]), 1001);
		expect(stored.ok && stored.object.size).toBe(1001);
	});

	it.each([
		["ends early", bodyOf([bytes(1000)])],
		["runs long in its last chunk", bodyOf([bytes(1002)])],
		["runs long in a later chunk", bodyOf([bytes(1000), bytes(5)])],
		["breaks off", bodyOf([bytes(500)], true)],
	])("a body that %s is the client's mismatch, and nothing is stored", async (name, body) => {
		const key = `put-stream/${name.replaceAll(" ", "-")}`;
		expect(await putStream(env.BUCKET, key, body, 1001)).toEqual({ ok: false, reason: "length_mismatch" });
		expect(await env.BUCKET.head(key)).toBeNull();
	});
});

describe("streamExactLength: a failing sink is ours, not the client's", () => {
	it("throws R2's own refusal (an invalid key) instead of calling it a mismatch", async () => {
		const put = putStream(env.BUCKET, "k".repeat(2000), bodyOf([bytes(1001)]), 1001);
		await expect(put).rejects.toThrow(/object name is not valid/);
	});

	it("throws a sink that breaks off mid-stream with its own error", async () => {
		const failing = async (readable: ReadableStream<Uint8Array>) => {
			const reader = readable.getReader();
			await reader.read();
			await reader.cancel(new Error("storage went down"));
			throw new Error("storage went down");
		};
		await expect(streamExactLength(bodyOf([bytes(500), bytes(501)]), 1001, failing)).rejects.toThrow(
			"storage went down",
		);
	});
});
