/**
 * The content bounds of uploads, from the Worker's vars (wrangler.toml `[vars]`), in one place so the
 * upload route, URL inputs and the verifier agree.
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

/** A positive number from a var, or `fallback` when it is unset or not a number. */
function num(value: string | undefined, fallback: number): number {
	const n = Number(value);
	return value !== undefined && value !== "" && Number.isFinite(n) && n >= 0 ? n : fallback;
}

/** The configured limits; unset vars get the defaults documented in wrangler.toml. */
export function mediaLimits(env: Partial<Record<string, unknown>>): MediaLimits {
	const v = (name: string) => (typeof env[name] === "string" ? (env[name] as string) : undefined);
	return {
		maxImageBytes: num(v("MAX_IMAGE_BYTES"), 26_214_400),
		maxAudioBytes: num(v("MAX_AUDIO_BYTES"), 104_857_600),
		minImageWidth: num(v("MIN_IMAGE_WIDTH"), 1),
		minImageHeight: num(v("MIN_IMAGE_HEIGHT"), 1),
		maxImageWidth: num(v("MAX_IMAGE_WIDTH"), 8192),
		maxImageHeight: num(v("MAX_IMAGE_HEIGHT"), 8192),
		maxAudioSeconds: num(v("MAX_AUDIO_SECONDS"), 600),
	};
}

/** The byte limit for a kind. */
export function maxBytesFor(limits: MediaLimits, kind: "image" | "audio"): number {
	return kind === "image" ? limits.maxImageBytes : limits.maxAudioBytes;
}
