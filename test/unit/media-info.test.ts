import { describe, expect, it } from "vitest";
import { audioDuration, imageDimensions } from "../../src/storage/media-info";
import { flacBytes, jpegBytes, mp3Bytes, oggBytes, pngBytes, wavBytes, webpBytes } from "../helpers/media";

const empty = new Uint8Array(0);

describe("imageDimensions", () => {
	it.each([
		["PNG 2x2", "image/png", pngBytes(), { width: 2, height: 2 }],
		["PNG 300x7", "image/png", pngBytes(300, 7), { width: 300, height: 7 }],
		["JPEG 8x8", "image/jpeg", jpegBytes(), { width: 8, height: 8 }],
		["WebP lossless 1x1", "image/webp", webpBytes(), { width: 1, height: 1 }],
	] as const)("reads %s", (_name, type, bytes, expected) => {
		expect(imageDimensions(type, bytes)).toEqual(expected);
	});

	it("reads VP8 and VP8X WebP headers", () => {
		const vp8 = new Uint8Array(30);
		vp8.set(
			[..."RIFF"].map((c) => c.charCodeAt(0)),
			0,
		);
		vp8.set(
			[..."WEBPVP8 "].map((c) => c.charCodeAt(0)),
			8,
		);
		vp8.set([0x9d, 0x01, 0x2a, 640 & 0xff, 640 >> 8, 480 & 0xff, 480 >> 8], 23);
		expect(imageDimensions("image/webp", vp8)).toEqual({ width: 640, height: 480 });
		const vp8x = new Uint8Array(30);
		vp8x.set(
			[..."RIFF"].map((c) => c.charCodeAt(0)),
			0,
		);
		vp8x.set(
			[..."WEBPVP8X"].map((c) => c.charCodeAt(0)),
			8,
		);
		vp8x.set([1919 & 0xff, 1919 >> 8, 0, 1079 & 0xff, 1079 >> 8, 0], 24);
		expect(imageDimensions("image/webp", vp8x)).toEqual({ width: 1920, height: 1080 });
	});

	it("returns null for a broken or truncated header", () => {
		const png = pngBytes();
		png[12] = 0x58; // "IHDR" → "XHDR"
		expect(imageDimensions("image/png", png)).toBeNull();
		expect(imageDimensions("image/png", pngBytes().subarray(0, 20))).toBeNull();
		expect(imageDimensions("image/jpeg", jpegBytes().subarray(0, 6))).toBeNull();
		expect(imageDimensions("image/webp", webpBytes().subarray(0, 16))).toBeNull();
	});
});

describe("audioDuration", () => {
	it("WAV: data bytes over the byte rate", () => {
		const wav = wavBytes({ seconds: 2.5, sampleRate: 8000 });
		expect(audioDuration("audio/wav", wav, empty, wav.length)).toBeCloseTo(2.5, 3);
		const stereo = wavBytes({ seconds: 1, sampleRate: 48000, channels: 2 });
		expect(audioDuration("audio/wav", stereo.subarray(0, 64), empty, stereo.length)).toBeCloseTo(1, 3);
	});

	it("FLAC: total samples unknown (0) gives no duration; set ones divide by the rate", () => {
		const flac = flacBytes();
		expect(audioDuration("audio/flac", flac, empty, flac.length)).toBeUndefined();
		const known = flac.slice();
		// 88200 samples at 44.1 kHz: 2 s.
		new DataView(known.buffer).setUint32(22, 88200);
		expect(audioDuration("audio/flac", known, empty, known.length)).toBeCloseTo(2, 6);
	});

	it("Ogg Opus: last granule minus pre-skip at 48 kHz", () => {
		const ogg = oggBytes();
		expect(audioDuration("audio/ogg", ogg, ogg, ogg.length)).toBeCloseTo(960 / 48000, 6);
	});

	it("MP3 CBR: bytes over the bitrate, ID3 tag skipped", () => {
		const mp3 = mp3Bytes({ frames: 100, id3: true });
		const seconds = audioDuration("audio/mpeg", mp3, empty, mp3.length) ?? 0;
		expect(seconds).toBeGreaterThan(2.5);
		expect(seconds).toBeLessThan(2.7); // 100 frames × 1152 / 44100 ≈ 2.61 s
	});
});
