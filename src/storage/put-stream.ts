/** Why a streamed PUT did not store anything. */
export type PutStreamFailure = "length_mismatch";

/**
 * Streams `body` into R2 at `key` without buffering it: through a `FixedLengthStream(length)` so R2 is told
 * the length up front (it rejects streams of unknown length) and a body that ends early or runs long errors
 * the stream, which aborts the put, so nothing partial is ever stored.
 */
export async function putStream(
	bucket: R2Bucket,
	key: string,
	body: ReadableStream<Uint8Array> | null,
	length: number,
	options: R2PutOptions = {},
): Promise<{ ok: true; object: R2Object } | { ok: false; reason: PutStreamFailure }> {
	if (!body || length === 0) {
		if (length !== 0) return { ok: false, reason: "length_mismatch" };
		if (body && !(await isEmpty(body))) return { ok: false, reason: "length_mismatch" };
		const object = await bucket.put(key, new Uint8Array(0), options);
		if (!object) throw new Error("R2 put returned no object");
		return { ok: true, object };
	}
	// Count what the client actually sent: when the length is wrong, workerd reports it as a failure of the
	// put (a TypeError from FixedLengthStream), which must not be mistaken for R2 failing.
	let seen = 0;
	const counter = new TransformStream<Uint8Array, Uint8Array>({
		transform(chunk, controller) {
			seen += chunk.byteLength;
			controller.enqueue(chunk);
		},
	});
	const fixed = new FixedLengthStream(length);
	// Two explicit pipes rather than pipeThrough, so both failures are awaited here and none goes unhandled.
	const reading = body.pipeTo(counter.writable);
	const writing = counter.readable.pipeTo(fixed.writable);
	const putting = bucket.put(key, fixed.readable, options);
	const [read, write, put] = await Promise.allSettled([reading, writing, putting]);
	// The body's fault (short, long, or the client went away): R2's put is atomic, so nothing was stored and
	// an older object at the key, if any, is untouched.
	if (read.status === "rejected" || write.status === "rejected" || seen !== length) {
		return { ok: false, reason: "length_mismatch" };
	}
	// A failing R2 is ours to report (a 500), not the client's.
	if (put.status === "rejected") throw put.reason;
	if (!put.value) throw new Error("R2 put returned no object");
	return { ok: true, object: put.value };
}

/** Whether a stream ends without a byte; stops at the first byte, so a lying client cannot make us buffer. */
async function isEmpty(body: ReadableStream<Uint8Array>): Promise<boolean> {
	const reader = body.getReader();
	for (;;) {
		const { done, value } = await reader.read();
		if (done) return true;
		if (value.byteLength > 0) {
			await reader.cancel().catch(() => undefined);
			return false;
		}
	}
}
