/**
 * Tiny, valid media files built in code, for tests across the project: a real 2x2 PNG (zlib stored block),
 * an 8x8 baseline JPEG, a 1x1 lossless WebP, WAV silence, MP3 silent frames, a FLAC stream header and an
 * Ogg Opus header pair. Each starts with its real magic bytes and is accepted by ordinary decoders.
 */

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

function concat(...parts: (Uint8Array | number[])[]): Uint8Array {
	const total = parts.reduce((n, p) => n + p.length, 0);
	const out = new Uint8Array(total);
	let at = 0;
	for (const p of parts) {
		out.set(p, at);
		at += p.length;
	}
	return out;
}

const u32be = (n: number) => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const u32le = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
const u16le = (n: number) => [n & 0xff, (n >>> 8) & 0xff];
const u16be = (n: number) => [(n >>> 8) & 0xff, n & 0xff];

const CRC32_TABLE = (() => {
	const table = new Uint32Array(256);
	for (let n = 0; n < 256; n++) {
		let c = n;
		for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
		table[n] = c >>> 0;
	}
	return table;
})();

/** CRC-32 as PNG (and zip) use it. */
export function crc32(bytes: Uint8Array): number {
	let c = 0xffffffff;
	for (const b of bytes) c = (CRC32_TABLE[(c ^ b) & 0xff] ?? 0) ^ (c >>> 8);
	return (c ^ 0xffffffff) >>> 0;
}

function adler32(bytes: Uint8Array): number {
	let a = 1;
	let b = 0;
	for (const x of bytes) {
		a = (a + x) % 65521;
		b = (b + a) % 65521;
	}
	return ((b << 16) | a) >>> 0;
}

function pngChunk(type: string, data: Uint8Array): Uint8Array {
	const typed = concat(ascii(type), data);
	return concat(u32be(data.length), typed, u32be(crc32(typed)));
}

/** A real `width`x`height` RGB PNG of one colour, its pixels in a zlib stored (uncompressed) block. */
export function pngBytes(width = 2, height = 2, rgb: [number, number, number] = [255, 0, 0]): Uint8Array {
	const row = [0, ...Array.from({ length: width }, () => rgb).flat()]; // filter byte 0, then pixels
	const raw = new Uint8Array(Array.from({ length: height }, () => row).flat());
	if (raw.length > 0xffff) throw new Error("pngBytes: image too large for one stored block");
	const zlib = concat([0x78, 0x01, 0x01], u16le(raw.length), u16le(~raw.length & 0xffff), raw, u32be(adler32(raw)));
	const ihdr = new Uint8Array([...u32be(width), ...u32be(height), 8, 2, 0, 0, 0]); // 8-bit RGB
	return concat(
		[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
		pngChunk("IHDR", ihdr),
		pngChunk("IDAT", zlib),
		pngChunk("IEND", new Uint8Array(0)),
	);
}

function jpegSegment(marker: number, body: number[]): number[] {
	return [0xff, marker, ...u16be(body.length + 2), ...body];
}

/**
 * A real 8x8 mid-grey baseline JPEG: one component, one block whose DC difference and AC run are both coded
 * by single one-bit Huffman codes, so the whole scan is the bits `0 0` padded with ones.
 */
export function jpegBytes(): Uint8Array {
	const counts = (n: number) => [n, ...new Array(15).fill(0)];
	return new Uint8Array([
		0xff,
		0xd8,
		...jpegSegment(0xe0, [...ascii("JFIF"), 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]),
		...jpegSegment(0xdb, [0x00, ...new Array(64).fill(1)]),
		...jpegSegment(0xc0, [8, ...u16be(8), ...u16be(8), 1, 1, 0x11, 0]),
		...jpegSegment(0xc4, [0x00, ...counts(1), 0x00]), // DC table 0: category 0 → "0"
		...jpegSegment(0xc4, [0x10, ...counts(1), 0x00]), // AC table 0: EOB → "0"
		...jpegSegment(0xda, [1, 1, 0x00, 0, 63, 0]),
		0x3f,
		0xff,
		0xd9,
	]);
}

/** A 1x1 lossless WebP (the classic feature-detection image, 34 bytes). */
export function webpBytes(): Uint8Array {
	const b64 = "UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==";
	return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

/** A PCM WAV of silence. */
export function wavBytes(options: { seconds?: number; sampleRate?: number; channels?: number } = {}): Uint8Array {
	const { seconds = 0.1, sampleRate = 8000, channels = 1 } = options;
	const bytesPerSample = 2;
	const dataLength = Math.round(seconds * sampleRate) * channels * bytesPerSample;
	const header = [
		...ascii("RIFF"),
		...u32le(36 + dataLength),
		...ascii("WAVE"),
		...ascii("fmt "),
		...u32le(16),
		...u16le(1), // PCM
		...u16le(channels),
		...u32le(sampleRate),
		...u32le(sampleRate * channels * bytesPerSample),
		...u16le(channels * bytesPerSample),
		...u16le(bytesPerSample * 8),
		...ascii("data"),
		...u32le(dataLength),
	];
	return concat(header, new Uint8Array(dataLength));
}

/**
 * MPEG-1 Layer III silence: `frames` frames at 128 kbit/s, 44.1 kHz, mono, all-zero side info (no coded
 * samples). With `id3`, an empty ID3v2.4 tag goes first, as most encoders write one.
 */
export function mp3Bytes(options: { frames?: number; id3?: boolean } = {}): Uint8Array {
	const { frames = 4, id3 = false } = options;
	const frameLength = Math.floor((144 * 128000) / 44100); // 417
	const frame = concat([0xff, 0xfb, 0x90, 0xc4], new Uint8Array(frameLength - 4));
	const tag = id3 ? [...ascii("ID3"), 4, 0, 0, 0, 0, 0, 0] : [];
	return concat(tag, ...Array.from({ length: frames }, () => frame));
}

/** A FLAC stream with its STREAMINFO block (44.1 kHz, mono, 16-bit) and no audio frames. */
export function flacBytes(): Uint8Array {
	const info = new Uint8Array(34);
	const view = new DataView(info.buffer);
	view.setUint16(0, 4096); // min block size
	view.setUint16(2, 4096); // max block size
	// min/max frame size (24 bits each) stay 0: unknown.
	// sample rate (20) | channels-1 (3) | bits-1 (5) | total samples (36): 64 bits at byte 10.
	const packed = (BigInt(44100) << 44n) | (0n << 41n) | (15n << 36n) | 0n;
	view.setBigUint64(10, packed);
	// MD5 of the (absent) samples stays zero: "not computed".
	return concat(ascii("fLaC"), [0x80, 0, 0, 34], info); // last-metadata-block flag + STREAMINFO
}

const OGG_CRC_TABLE = (() => {
	const table = new Uint32Array(256);
	for (let n = 0; n < 256; n++) {
		let c = n << 24;
		for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
		table[n] = c >>> 0;
	}
	return table;
})();

function oggCrc(bytes: Uint8Array): number {
	let c = 0;
	for (const b of bytes) c = ((c << 8) ^ (OGG_CRC_TABLE[((c >>> 24) ^ b) & 0xff] ?? 0)) >>> 0;
	return c >>> 0;
}

function oggPage(packet: Uint8Array, flags: number, sequence: number, serial: number, granule = 0): Uint8Array {
	const segments: number[] = [];
	let left = packet.length;
	while (left >= 255) {
		segments.push(255);
		left -= 255;
	}
	segments.push(left);
	const header = [
		...ascii("OggS"),
		0,
		flags,
		...u32le(granule),
		0,
		0,
		0,
		0, // granule position (64-bit LE; small here)
		...u32le(serial),
		...u32le(sequence),
		0,
		0,
		0,
		0, // CRC, filled in below
		segments.length,
		...segments,
	];
	const page = concat(header, packet);
	new DataView(page.buffer).setUint32(22, oggCrc(page), true);
	return page;
}

/** An Ogg Opus stream: OpusHead, OpusTags and one 20 ms silent packet, page CRCs correct. */
export function oggBytes(): Uint8Array {
	const head = concat(ascii("OpusHead"), [1, 1], u16le(312), u32le(48000), u16le(0), [0]);
	const vendor = ascii("reelgate-test");
	const tags = concat(ascii("OpusTags"), u32le(vendor.length), vendor, u32le(0));
	const serial = 0x5265_656c;
	const silence = new Uint8Array([0xf8, 0xff, 0xfe]); // TOC: CELT fullband 20 ms, mono; a silent frame
	return concat(
		oggPage(head, 0x02, 0, serial),
		oggPage(tags, 0x00, 1, serial),
		oggPage(silence, 0x04, 2, serial, 312 + 960),
	);
}

/** One valid sample per accepted type. */
export const SAMPLES: Record<string, () => Uint8Array> = {
	"image/png": () => pngBytes(),
	"image/jpeg": () => jpegBytes(),
	"image/webp": () => webpBytes(),
	"audio/wav": () => wavBytes(),
	"audio/mpeg": () => mp3Bytes(),
	"audio/flac": () => flacBytes(),
	"audio/ogg": () => oggBytes(),
};

/** Hex SHA-256 of some bytes. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
	const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
	return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Deterministic pseudo-random bytes (xorshift), for bodies whose every byte should matter. */
export function noiseBytes(length: number, seed = 1): Uint8Array {
	const out = new Uint8Array(length);
	let x = seed >>> 0 || 1;
	for (let i = 0; i < length; i++) {
		x ^= x << 13;
		x ^= x >>> 17;
		x ^= x << 5;
		out[i] = x & 0xff;
	}
	return out;
}
