import type { MediaType } from "./sniff";

/**
 * What the headers of a media file say about it, read from its first bytes (and, for Ogg, its last bytes),
 * never the whole file: image dimensions from PNG IHDR, JPEG SOFn and WebP VP8/VP8L/VP8X; audio duration from
 * the WAV header, FLAC STREAMINFO, the last Ogg granule position and MP3 Xing/VBRI (or the bitrate for CBR).
 * Pure: every format is a unit test.
 */
export interface MediaInfo {
	width?: number;
	height?: number;
	duration_s?: number;
}

/** How many leading bytes the parsers want: enough for a JPEG whose EXIF/ICC segments precede the SOF. */
export const MEDIA_HEAD_BYTES = 256 * 1024;
/** How many trailing bytes the Ogg parser wants: the last page is at most 65,307 bytes. */
export const MEDIA_TAIL_BYTES = 64 * 1024;

const u16be = (b: Uint8Array, at: number) => ((b[at] ?? 0) << 8) | (b[at + 1] ?? 0);
const u16le = (b: Uint8Array, at: number) => (b[at] ?? 0) | ((b[at + 1] ?? 0) << 8);
const u24le = (b: Uint8Array, at: number) => u16le(b, at) | ((b[at + 2] ?? 0) << 16);
const u32be = (b: Uint8Array, at: number) => u16be(b, at) * 0x10000 + u16be(b, at + 2);
const u32le = (b: Uint8Array, at: number) => u16le(b, at) + u16le(b, at + 2) * 0x10000;
const tag = (b: Uint8Array, at: number, len = 4) => String.fromCharCode(...b.subarray(at, at + len));

/** `{ width, height }` of a PNG, JPEG or WebP from its first bytes, or null when the header is unreadable. */
export function imageDimensions(type: MediaType, head: Uint8Array): { width: number; height: number } | null {
	switch (type) {
		case "image/png":
			// Signature (8), IHDR length (4), "IHDR" (4), then width and height.
			if (head.length < 24 || tag(head, 12) !== "IHDR") return null;
			return positive(u32be(head, 16), u32be(head, 20));
		case "image/jpeg":
			return jpegDimensions(head);
		case "image/webp":
			return webpDimensions(head);
		default:
			return null;
	}
}

function positive(width: number, height: number): { width: number; height: number } | null {
	return width > 0 && height > 0 ? { width, height } : null;
}

/** Walks the JPEG segments to the first SOFn (C0–CF except DHT C4, JPG C8 and DAC CC). */
function jpegDimensions(b: Uint8Array): { width: number; height: number } | null {
	let at = 2;
	while (at + 4 <= b.length) {
		if (b[at] !== 0xff) return null;
		const marker = b[at + 1] ?? 0;
		if (marker === 0xff) {
			at++; // fill byte
			continue;
		}
		// Standalone markers carry no length.
		if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
			at += 2;
			continue;
		}
		const length = u16be(b, at + 2);
		if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
			if (at + 9 > b.length) return null;
			return positive(u16be(b, at + 7), u16be(b, at + 5));
		}
		if (marker === 0xda || length < 2) return null; // scan data before any frame header
		at += 2 + length;
	}
	return null;
}

function webpDimensions(b: Uint8Array): { width: number; height: number } | null {
	if (b.length < 30) return null;
	switch (tag(b, 12)) {
		case "VP8 ":
			// Frame tag (3), start code 9d 01 2a, then 14-bit width and height.
			if (b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) return null;
			return positive(u16le(b, 26) & 0x3fff, u16le(b, 28) & 0x3fff);
		case "VP8L": {
			if (b[20] !== 0x2f) return null;
			const bits = u32le(b, 21);
			return positive((bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1);
		}
		case "VP8X":
			return positive(u24le(b, 24) + 1, u24le(b, 27) + 1);
		default:
			return null;
	}
}

/**
 * The duration in seconds of an audio file from its first bytes (`head`), its last bytes (`tail`, for Ogg)
 * and its total `size`; undefined when the headers do not say (best effort: a file is never refused only for
 * that, since the GPU backend decodes it anyway).
 */
export function audioDuration(type: MediaType, head: Uint8Array, tail: Uint8Array, size: number): number | undefined {
	switch (type) {
		case "audio/wav":
			return wavDuration(head, size);
		case "audio/flac":
			return flacDuration(head);
		case "audio/ogg":
			return oggDuration(head, tail);
		case "audio/mpeg":
			return mp3Duration(head, size);
		default:
			return undefined;
	}
}

/** RIFF chunks: `fmt ` gives the byte rate, `data` the byte count (or the rest of the file when unset). */
function wavDuration(b: Uint8Array, size: number): number | undefined {
	let byteRate = 0;
	let at = 12;
	while (at + 8 <= b.length) {
		const id = tag(b, at);
		const length = u32le(b, at + 4);
		if (id === "fmt " && at + 16 <= b.length) byteRate = u32le(b, at + 16);
		if (id === "data") {
			if (byteRate === 0) return undefined;
			// Streaming writers leave the size at 0 or 0xFFFFFFFF; the rest of the file is the data.
			const bytes = length === 0 || length === 0xffffffff ? size - at - 8 : Math.min(length, size - at - 8);
			return Math.max(0, bytes) / byteRate;
		}
		at += 8 + length + (length % 2);
	}
	return undefined;
}

/** STREAMINFO follows "fLaC" and its block header: sample rate (20 bits) and total samples (36 bits). */
function flacDuration(b: Uint8Array): number | undefined {
	if (b.length < 26 || ((b[4] ?? 0) & 0x7f) !== 0) return undefined;
	const rate = ((b[18] ?? 0) << 12) | ((b[19] ?? 0) << 4) | ((b[20] ?? 0) >> 4);
	const samples = ((b[21] ?? 0) & 0x0f) * 2 ** 32 + u32be(b, 22);
	return rate > 0 && samples > 0 ? samples / rate : undefined;
}

/** The sample rate from the first packet (Vorbis or Opus), the sample count from the last page's granule. */
function oggDuration(head: Uint8Array, tail: Uint8Array): number | undefined {
	if (head.length < 28 + 19) return undefined;
	const segments = head[26] ?? 0;
	const packet = 27 + segments;
	let rate = 0;
	let preSkip = 0;
	if (tag(head, packet, 7) === "\x01vorbis") rate = u32le(head, packet + 12);
	else if (tag(head, packet, 8) === "OpusHead") {
		rate = 48000; // Opus granules always count 48 kHz samples.
		preSkip = u16le(head, packet + 10);
	}
	if (rate === 0) return undefined;
	for (let at = tail.length - 27; at >= 0; at--) {
		if (tail[at] !== 0x4f || tag(tail, at) !== "OggS") continue;
		const granule = u32le(tail, at + 6) + u32le(tail, at + 10) * 2 ** 32;
		// -1 marks a page on which no packet ends; a header page has 0: keep looking backwards.
		if (granule === 0xffffffff * 2 ** 32 + 0xffffffff || granule === 0) continue;
		return Math.max(0, granule - preSkip) / rate;
	}
	return undefined;
}

const MP3_BITRATES: Record<string, number[]> = {
	// [version 1 | 2] × [layer 1, 2, 3], kbit/s by index 0–14.
	"1-1": [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
	"1-2": [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
	"1-3": [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
	"2-1": [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
	"2-2": [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
	"2-3": [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
};
const MP3_RATES: Record<number, number[]> = {
	3: [44100, 48000, 32000],
	2: [22050, 24000, 16000],
	0: [11025, 12000, 8000],
};

/** Skips ID3v2, reads the first frame header, then Xing/Info or VBRI frame counts, else a CBR estimate. */
function mp3Duration(b: Uint8Array, size: number): number | undefined {
	let at = 0;
	if (tag(b, 0, 3) === "ID3" && b.length >= 10) {
		const tagSize =
			(((b[6] ?? 0) & 0x7f) << 21) | (((b[7] ?? 0) & 0x7f) << 14) | (((b[8] ?? 0) & 0x7f) << 7) | ((b[9] ?? 0) & 0x7f);
		at = 10 + tagSize + ((b[5] ?? 0) & 0x10 ? 10 : 0);
	}
	while (at + 4 <= b.length && !(b[at] === 0xff && ((b[at + 1] ?? 0) & 0xe0) === 0xe0)) at++;
	if (at + 4 > b.length) return undefined;
	const b1 = b[at + 1] ?? 0;
	const b2 = b[at + 2] ?? 0;
	const b3 = b[at + 3] ?? 0;
	const versionBits = (b1 >> 3) & 3; // 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
	const layer = 4 - ((b1 >> 1) & 3); // 1, 2 or 3
	const rate = MP3_RATES[versionBits]?.[(b2 >> 2) & 3];
	const kbps = MP3_BITRATES[`${versionBits === 3 ? 1 : 2}-${layer}`]?.[b2 >> 4];
	if (!rate || layer > 3) return undefined;
	const samplesPerFrame = layer === 1 ? 384 : layer === 2 || versionBits === 3 ? 1152 : 576;
	const mono = b3 >> 6 === 3;
	const sideInfo = versionBits === 3 ? (mono ? 17 : 32) : mono ? 9 : 17;
	const xing = at + 4 + sideInfo;
	const xingTag = tag(b, xing);
	if ((xingTag === "Xing" || xingTag === "Info") && ((b[xing + 7] ?? 0) & 1) === 1) {
		const frames = u32be(b, xing + 8);
		if (frames > 0) return (frames * samplesPerFrame) / rate;
	}
	if (tag(b, at + 36) === "VBRI") {
		const frames = u32be(b, at + 36 + 14);
		if (frames > 0) return (frames * samplesPerFrame) / rate;
	}
	if (!kbps) return undefined;
	return ((size - at) * 8) / (kbps * 1000);
}
