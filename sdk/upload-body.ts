// Bytes to upload, in the shapes callers have them, and request bodies that report how much was sent.

/** What `uploadFile` accepts: bytes, a Blob/File, or a stream (read into memory: the API needs the size first). */
export type UploadData = Uint8Array | ArrayBuffer | Blob | ReadableStream<Uint8Array>;

export async function toBytesOrBlob(data: UploadData): Promise<Uint8Array | Blob> {
	if (data instanceof Uint8Array || data instanceof Blob) return data;
	if (data instanceof ArrayBuffer) return new Uint8Array(data);
	return new Uint8Array(await new Response(data).arrayBuffer());
}

export async function sha256Hex(data: Uint8Array | Blob): Promise<string> {
	const buf = data instanceof Blob ? await data.arrayBuffer() : data;
	const digest = await crypto.subtle.digest("SHA-256", buf as Uint8Array<ArrayBuffer>);
	return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export function sizeOf(data: Uint8Array | Blob): number {
	return data instanceof Blob ? data.size : data.byteLength;
}

export function slice(data: Uint8Array | Blob, start: number, end: number): Uint8Array | Blob {
	return data instanceof Blob ? data.slice(start, end) : data.subarray(start, end);
}

const CHUNK = 64 * 1024;

/** Only Node's fetch sends a streamed body with a fixed Content-Length over HTTP/1.1; browsers refuse. */
const canStreamUploads =
	typeof (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node === "string";

/**
 * A fetch body for `data` and the extra `RequestInit` it needs. With `onSent` (bytes so far) in Node, a stream
 * that counts as it is read; elsewhere the plain bytes (the caller reports completion).
 */
export function countingBody(
	data: Uint8Array | Blob,
	onSent?: (bytes: number) => void,
): { body: BodyInit; init: RequestInit } {
	const total = sizeOf(data);
	if (!onSent || !canStreamUploads) {
		return { body: data as BodyInit, init: {} };
	}
	let offset = 0;
	const stream = new ReadableStream<Uint8Array>(
		{
			async pull(controller) {
				if (offset >= total) return controller.close();
				const part = slice(data, offset, Math.min(total, offset + CHUNK));
				const bytes = part instanceof Blob ? new Uint8Array(await part.arrayBuffer()) : part;
				offset += bytes.byteLength;
				controller.enqueue(bytes);
				onSent(offset);
			},
		},
		{ highWaterMark: 0 },
	);
	// `duplex` is required by Node for a stream body; Content-Length keeps it a fixed-length request.
	return { body: stream, init: { duplex: "half" } as RequestInit };
}
