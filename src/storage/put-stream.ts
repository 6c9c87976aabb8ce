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
	const sent = await streamExactLength(body, length, (readable) => bucket.put(key, readable, options));
	if (!sent.ok) return sent;
	if (!sent.value) throw new Error("R2 put returned no object");
	return { ok: true, object: sent.value };
}

/**
 * Pipes `body` into `sink` through a `FixedLengthStream(length)` (R2 needs the length up front) and tells a body of
 * the wrong length apart from a failing sink: the first is the client's fault (`length_mismatch`), the second is
 * thrown as ours. R2 writes are atomic, so after a mismatch nothing was stored.
 */
export async function streamExactLength<T>(
	body: ReadableStream<Uint8Array>,
	length: number,
	sink: (readable: ReadableStream<Uint8Array>) => Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; reason: PutStreamFailure }> {
	// Count what the client actually sent: when the length is wrong, workerd reports it as a failure of the
	// sink (a TypeError from FixedLengthStream), which must not be mistaken for R2 failing.
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
	const [read, write, sunk] = await Promise.allSettled([reading, writing, sink(fixed.readable)]);
	if (read.status === "rejected" || write.status === "rejected" || seen !== length) {
		return { ok: false, reason: "length_mismatch" };
	}
	if (sunk.status === "rejected") throw sunk.reason;
	return { ok: true, value: sunk.value };
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
