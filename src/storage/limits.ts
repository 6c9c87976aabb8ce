import type { MediaLimits } from "../config";

/** The byte limit for a kind. */
export function maxBytesFor(limits: MediaLimits, kind: "image" | "audio"): number {
	return kind === "image" ? limits.maxImageBytes : limits.maxAudioBytes;
}
