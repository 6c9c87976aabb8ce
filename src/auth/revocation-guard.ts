/**
 * A long-lived response (the job's event stream) was authorized once, when it opened. This guard checks the key
 * again every `intervalMs` while the stream is open and ends it once the key is revoked, so revocation reaches
 * open streams too, not only the next request. A failed check (a D1 hiccup) keeps the stream: the next one decides.
 */
export function endOnRevocation(
	stream: ReadableStream<Uint8Array>,
	keyIsActive: () => Promise<boolean>,
	intervalMs: number,
): ReadableStream<Uint8Array> {
	let timer: ReturnType<typeof setInterval> | null = null;
	const stop = () => {
		if (timer !== null) clearInterval(timer);
		timer = null;
	};
	const guard = new TransformStream<Uint8Array, Uint8Array>({
		start(controller) {
			timer = setInterval(async () => {
				const active = await keyIsActive().catch(() => true);
				if (active || timer === null) return;
				stop();
				// A comment frame, so a client reading the stream can tell why it ended; then the upstream is canceled.
				controller.enqueue(REVOKED_FRAME);
				controller.terminate();
			}, intervalMs);
		},
		flush: stop,
		cancel: stop,
	});
	return stream.pipeThrough(guard);
}

const REVOKED_FRAME = new TextEncoder().encode(": the API key was revoked\n\n");
