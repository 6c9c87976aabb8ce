// Small, real media files made in memory: a PNG (zlib-deflated RGB) and a WAV (16-bit PCM tone).
import { deflateSync } from "node:zlib";

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
	let c = n;
	for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
	return c >>> 0;
});

function crc32(buf: Uint8Array): number {
	let c = 0xffffffff;
	for (const b of buf) c = (CRC_TABLE[(c ^ b) & 0xff] as number) ^ (c >>> 8);
	return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
	const len = Buffer.alloc(4);
	len.writeUInt32BE(data.length);
	const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
	const crc = Buffer.alloc(4);
	crc.writeUInt32BE(crc32(body));
	return Buffer.concat([len, body, crc]);
}

/** A width×height RGB PNG with a colour gradient. */
export function makePng(width = 64, height = 64): Buffer {
	const ihdr = Buffer.alloc(13);
	ihdr.writeUInt32BE(width, 0);
	ihdr.writeUInt32BE(height, 4);
	ihdr[8] = 8; // bit depth
	ihdr[9] = 2; // colour type: RGB
	const raw = Buffer.alloc((width * 3 + 1) * height);
	for (let y = 0; y < height; y++) {
		const row = y * (width * 3 + 1);
		raw[row] = 0; // filter: none
		for (let x = 0; x < width; x++) {
			const p = row + 1 + x * 3;
			raw[p] = Math.round((x / (width - 1)) * 255);
			raw[p + 1] = Math.round((y / (height - 1)) * 255);
			raw[p + 2] = 128;
		}
	}
	return Buffer.concat([
		Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
		chunk("IHDR", ihdr),
		chunk("IDAT", deflateSync(raw)),
		chunk("IEND", Buffer.alloc(0)),
	]);
}

/** A mono 16-bit PCM WAV holding a sine tone. */
export function makeWav(seconds = 1, sampleRate = 16_000, freq = 440): Buffer {
	const samples = Math.round(seconds * sampleRate);
	const data = Buffer.alloc(samples * 2);
	for (let i = 0; i < samples; i++) {
		data.writeInt16LE(Math.round(Math.sin((2 * Math.PI * freq * i) / sampleRate) * 0.5 * 32767), i * 2);
	}
	const h = Buffer.alloc(44);
	h.write("RIFF", 0, "ascii");
	h.writeUInt32LE(36 + data.length, 4);
	h.write("WAVE", 8, "ascii");
	h.write("fmt ", 12, "ascii");
	h.writeUInt32LE(16, 16); // fmt chunk size
	h.writeUInt16LE(1, 20); // PCM
	h.writeUInt16LE(1, 22); // mono
	h.writeUInt32LE(sampleRate, 24);
	h.writeUInt32LE(sampleRate * 2, 28); // byte rate
	h.writeUInt16LE(2, 32); // block align
	h.writeUInt16LE(16, 34); // bits per sample
	h.write("data", 36, "ascii");
	h.writeUInt32LE(data.length, 40);
	return Buffer.concat([h, data]);
}
