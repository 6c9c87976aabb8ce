/**
 * The job's event stream as the client reads it: each succeeded job in it carries `share_url`, as
 * GET /v1/jobs/{id} shows it. The link is signed as the event is read (it expires in 24 h), never stored in the
 * job's event log, so a replay a day later gets a working one.
 */

const FRAME_END = "\n\n";
const SUCCEEDED = '"status":"succeeded"';

/** Adds `share_url` to the data of every frame whose job succeeded; `shareUrl` is asked once, when first needed. */
export function withShareUrlInEvents(
	events: ReadableStream<Uint8Array>,
	shareUrl: () => Promise<string>,
): ReadableStream<Uint8Array> {
	const decoder = new TextDecoder();
	const encoder = new TextEncoder();
	let pending = "";
	let signed: Promise<string> | undefined;
	const frame = async (text: string): Promise<string> => {
		if (!text.includes(SUCCEEDED)) return text;
		const lines = text.split("\n");
		const at = lines.findIndex((l) => l.startsWith("data: "));
		const data = at < 0 ? null : (JSON.parse(lines[at]?.slice("data: ".length) ?? "null") as Record<string, unknown>);
		if (data?.status !== "succeeded" || "share_url" in data) return text;
		signed ??= shareUrl();
		lines[at] = `data: ${JSON.stringify({ ...data, share_url: await signed })}`;
		return lines.join("\n");
	};
	return events.pipeThrough(
		new TransformStream<Uint8Array, Uint8Array>({
			async transform(chunk, controller) {
				pending += decoder.decode(chunk, { stream: true });
				let end = pending.indexOf(FRAME_END);
				while (end >= 0) {
					const text = pending.slice(0, end + FRAME_END.length);
					pending = pending.slice(end + FRAME_END.length);
					controller.enqueue(encoder.encode(await frame(text)));
					end = pending.indexOf(FRAME_END);
				}
			},
			flush(controller) {
				if (pending) controller.enqueue(encoder.encode(pending));
			},
		}),
	);
}
