/**
 * The content bounds of uploads (`Config.media`, from the Worker's vars: src/config.ts), one shape so the upload
 * route, URL inputs and the verifier agree.
 */
export interface MediaLimits {
	maxImageBytes: number;
	maxAudioBytes: number;
	minImageWidth: number;
	minImageHeight: number;
	maxImageWidth: number;
	maxImageHeight: number;
	/** Longest accepted audio, in seconds. */
	maxAudioSeconds: number;
}

/** The byte limit for a kind. */
export function maxBytesFor(limits: MediaLimits, kind: "image" | "audio"): number {
	return kind === "image" ? limits.maxImageBytes : limits.maxAudioBytes;
}
