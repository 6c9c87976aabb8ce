/**
 * Why a streamed PUT did not store anything: the body's length was wrong, or the put's `onlyIf` condition failed
 * (R2 answers such a put with null).
 */
export type PutStreamFailure = "length_mismatch" | "precondition_failed";

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
		return object ? { ok: true, object } : refusedPut(options);
	}
	const sent = await streamExactLength(body, length, (readable) => bucket.put(key, readable, options));
	if (!sent.ok) return sent;
	return sent.value ? { ok: true, object: sent.value } : refusedPut(options);
}

/** R2 answers null only when the put's condition failed; without one, that is R2 misbehaving. */
function refusedPut(options: R2PutOptions): { ok: false; reason: "precondition_failed" } {
	if (!options.onlyIf) throw new Error("R2 put returned no object");
	return { ok: false, reason: "precondition_failed" };
}

/**
 * Pipes `body` into `sink` through a `FixedLengthStream(length)` (R2 needs the length up front) and tells a body of
 * the wrong length apart from a failing sink: the first is the client's fault (`length_mismatch`), the second is
 * thrown as ours. R2 writes are atomic, so after a mismatch nothing was stored.
 *
 * The pipe is native end to end: no JavaScript sees the chunks (a counting transform in the middle halved upload
 * throughput, BENCHMARKS.md). So the failure is told apart by how it surfaced: a body that breaks off fails the
 * pipe before the sink, one that runs long fails both with FixedLengthStream's length error, one that ends early
 * fails only the sink, with that same error; a sink that fails on its own fails first with its own error.
 */
export async function streamExactLength<T>(
	body: ReadableStream<Uint8Array>,
	length: number,
	sink: (readable: ReadableStream<Uint8Array>) => Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; reason: "length_mismatch" }> {
	const fixed = new FixedLengthStream(length);
	let sinkFailedFirst = false;
	let readFailed = false;
	// Both sides are awaited here, so neither failure goes unhandled.
	const reading = body.pipeTo(fixed.writable).catch((err: unknown) => {
		readFailed = true;
		throw err;
	});
	const sinking = sink(fixed.readable).catch((err: unknown) => {
		sinkFailedFirst = !readFailed;
		throw err;
	});
	const [read, sunk] = await Promise.allSettled([reading, sinking]);
	if (sunk.status === "fulfilled" && read.status === "fulfilled") return { ok: true, value: sunk.value };
	if (sunk.status === "rejected" && !isLengthError(sunk.reason) && (sinkFailedFirst || read.status === "fulfilled")) {
		throw sunk.reason;
	}
	return { ok: false, reason: "length_mismatch" };
}

/** FixedLengthStream's refusal of a body that ran long or ended early. */
function isLengthError(err: unknown): boolean {
	return err instanceof TypeError && /FixedLengthStream/.test(err.message);
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
