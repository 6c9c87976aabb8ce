/**
 * Media types Reelgate accepts, their aliases, and recognising them from their first bytes.
 * The declared Content-Type of an upload is checked against the bytes at `complete`, so a renamed file
 * never reaches a GPU backend as the wrong kind.
 */
// With its extension: the CLI runs this file under Node's type stripping (sdk/files.ts), which resolves no
// extensionless import.
import { AUDIO_TYPES, type AudioType, IMAGE_TYPES, type ImageType } from "../schemas/uploads.ts";

export type MediaType = ImageType | AudioType;

/** How many leading bytes `sniff` needs. */
export const SNIFF_BYTES = 16;

/** Names clients and browsers send for the same formats (e.g. Firefox labels WAV `audio/wave`). */
const ALIASES: Record<string, MediaType> = {
	"audio/x-wav": "audio/wav",
	"audio/wave": "audio/wav",
	"audio/vnd.wave": "audio/wav",
	"audio/mp3": "audio/mpeg",
	"audio/x-flac": "audio/flac",
	"image/jpg": "image/jpeg",
};

const ALL_TYPES: readonly string[] = [...IMAGE_TYPES, ...AUDIO_TYPES];

/** The canonical accepted type for a Content-Type (parameters and case ignored), or null if not accepted. */
export function normalizeMediaType(contentType: string): MediaType | null {
	const essence = (contentType.split(";")[0] ?? "").trim().toLowerCase();
	if (ALL_TYPES.includes(essence)) return essence as MediaType;
	return ALIASES[essence] ?? null;
}

/** Whether a canonical type is an image or an audio type. */
export function mediaKind(type: MediaType): "image" | "audio" {
	return (IMAGE_TYPES as readonly string[]).includes(type) ? "image" : "audio";
}

function startsWith(head: Uint8Array, bytes: readonly number[], at = 0): boolean {
	if (head.length < at + bytes.length) return false;
	return bytes.every((b, i) => head[at + i] === b);
}

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG = [0xff, 0xd8, 0xff];
const RIFF = ascii("RIFF");
const WEBP = ascii("WEBP");
const WAVE = ascii("WAVE");
const ID3 = ascii("ID3");
const FLAC = ascii("fLaC");
const OGG = ascii("OggS");

/**
 * An MPEG audio frame header: 11 sync bits, then a version that is not "reserved" (01), a layer that is not
 * "reserved" (00), a bitrate index that is not "bad" (1111) and a sample rate that is not "reserved" (11).
 * The extra checks keep random 0xFFEx bytes (and JPEG's 0xFFD8) from passing as MP3.
 */
function isMpegFrame(head: Uint8Array): boolean {
	const [b0, b1, b2] = head;
	if (b0 !== 0xff || b1 === undefined || b2 === undefined || (b1 & 0xe0) !== 0xe0) return false;
	const version = (b1 >> 3) & 0b11;
	const layer = (b1 >> 1) & 0b11;
	const bitrate = b2 >> 4;
	const sampleRate = (b2 >> 2) & 0b11;
	return version !== 0b01 && layer !== 0b00 && bitrate !== 0b1111 && sampleRate !== 0b11;
}

/** The accepted type whose magic bytes start `head`, or null. */
export function sniff(head: Uint8Array): MediaType | null {
	if (startsWith(head, PNG)) return "image/png";
	if (startsWith(head, JPEG)) return "image/jpeg";
	if (startsWith(head, RIFF) && startsWith(head, WEBP, 8)) return "image/webp";
	if (startsWith(head, RIFF) && startsWith(head, WAVE, 8)) return "audio/wav";
	if (startsWith(head, FLAC)) return "audio/flac";
	if (startsWith(head, OGG)) return "audio/ogg";
	if (startsWith(head, ID3) || isMpegFrame(head)) return "audio/mpeg";
	return null;
}

/** Whether the bytes starting with `head` are of the declared `contentType` (aliases accepted). */
export function matchesDeclaredType(head: Uint8Array, contentType: string): boolean {
	const declared = normalizeMediaType(contentType);
	return declared !== null && sniff(head) === declared;
}
