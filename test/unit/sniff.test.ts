import { describe, expect, it } from "vitest";
import { matchesDeclaredType, mediaKind, normalizeMediaType, sniff } from "../../src/storage/sniff";
import {
	flacBytes,
	jpegBytes,
	mp3Bytes,
	noiseBytes,
	oggBytes,
	pngBytes,
	SAMPLES,
	wavBytes,
	webpBytes,
} from "../helpers/media";

describe("sniff", () => {
	it.each(Object.entries(SAMPLES))("recognises %s from its own sample", (type, make) => {
		expect(sniff(make())).toBe(type);
		expect(matchesDeclaredType(make(), type)).toBe(true);
	});

	it.each<[string, Uint8Array, string | null]>([
		["MP3 with an ID3 tag", mp3Bytes({ id3: true }), "audio/mpeg"],
		["MP3 frame sync without a tag", mp3Bytes(), "audio/mpeg"],
		["a JPEG is not an MP3 frame", jpegBytes(), "image/jpeg"],
		["0xFFE0 with a reserved layer is not MP3", new Uint8Array([0xff, 0xe0, 0x90, 0x00]), null],
		["RIFF of another kind (AVI)", new Uint8Array([...new TextEncoder().encode("RIFF\0\0\0\0AVI LIST")]), null],
		["truncated PNG signature", pngBytes().slice(0, 4), null],
		["empty", new Uint8Array(0), null],
		["noise", noiseBytes(64, 7), null],
		["text", new TextEncoder().encode("<html>hello</html>"), null],
	])("%s", (_name, bytes, expected) => {
		expect(sniff(bytes)).toBe(expected);
	});

	it("reads only the first bytes it needs", () => {
		expect(sniff(wavBytes().slice(0, 16))).toBe("audio/wav");
		expect(sniff(webpBytes().slice(0, 16))).toBe("image/webp");
	});
});

describe("matchesDeclaredType", () => {
	it.each<[string, Uint8Array, string, boolean]>([
		["WAV declared as audio/x-wav", wavBytes(), "audio/x-wav", true],
		["WAV declared as audio/wave", wavBytes(), "audio/wave", true],
		["PNG with parameters and case", pngBytes(), "Image/PNG; charset=binary", true],
		["PNG declared as JPEG", pngBytes(), "image/jpeg", false],
		["WebP declared as WAV (same RIFF container)", webpBytes(), "audio/wav", false],
		["FLAC declared as Ogg", flacBytes(), "audio/ogg", false],
		["Ogg declared as an unsupported type", oggBytes(), "video/ogg", false],
		["noise declared as PNG", noiseBytes(32), "image/png", false],
	])("%s → %s", (_name, bytes, type, expected) => {
		expect(matchesDeclaredType(bytes, type)).toBe(expected);
	});
});

describe("normalizeMediaType", () => {
	it.each<[string, string | null]>([
		["image/png", "image/png"],
		["audio/x-wav", "audio/wav"],
		["audio/wave", "audio/wav"],
		["audio/mp3", "audio/mpeg"],
		[" audio/FLAC ; q=1", "audio/flac"],
		["image/gif", null],
		["video/mp4", null],
		["", null],
	])("%s → %s", (input, expected) => {
		expect(normalizeMediaType(input)).toBe(expected);
	});

	it("tells images from audio", () => {
		expect(mediaKind("image/webp")).toBe("image");
		expect(mediaKind("audio/ogg")).toBe("audio");
	});
});
