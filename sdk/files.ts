// Files a caller hands to `upload` and `run`, in the shapes they have them, resolved to bytes with a name and a
// media type. The type comes from what the caller said, the Blob, the file name, or the bytes themselves (the same
// recogniser the API checks uploads with).
import { SNIFF_BYTES, sniff } from "../src/storage/sniff.ts";

/** Bytes with, optionally, their name and type. */
export interface NamedData {
	data: Blob | Uint8Array | ArrayBuffer;
	filename?: string;
	contentType?: string;
	/** Hex SHA-256 of the bytes, when the caller has it (saves reading them twice). */
	sha256?: string;
}

/** What `upload` takes: bytes, a Blob or File, or bytes with their name and type. */
export type FileInput = Blob | Uint8Array | ArrayBuffer | NamedData;

/**
 * What `run` takes for an image or audio input: a file to upload (as above, or in Node a path), the id of an upload
 * already made (`upl_…`), or a URL the API fetches itself (a `URL`, or a string starting with http(s)://).
 */
export type RunFile = FileInput | URL | string;

export interface ResolvedFile {
	data: Blob | Uint8Array;
	filename: string;
	contentType: string;
	sha256?: string;
}

/** Media types by file extension: what the API accepts. */
export const CONTENT_TYPES: Record<string, string> = {
	".png": "image/png",
	".jpg": "image/jpeg",
	".jpeg": "image/jpeg",
	".webp": "image/webp",
	".wav": "audio/wav",
	".mp3": "audio/mpeg",
	".flac": "audio/flac",
	".ogg": "audio/ogg",
};

export function contentTypeOfName(name: string): string | undefined {
	const dot = name.lastIndexOf(".");
	return dot < 0 ? undefined : CONTENT_TYPES[name.slice(dot).toLowerCase()];
}

const isNamed = (file: FileInput): file is NamedData =>
	!(file instanceof Blob) && !(file instanceof Uint8Array) && !(file instanceof ArrayBuffer);

/** How a `run` input is sent: as is (an upload id or a URL the API fetches), or as a file to upload first. */
export function classifyRunFile(
	file: RunFile,
): { kind: "reference"; value: string } | { kind: "path"; path: string } | { kind: "file"; file: FileInput } {
	if (file instanceof URL) return { kind: "reference", value: file.href };
	if (typeof file === "string") {
		if (/^upl_[a-z0-9]+$/.test(file) || /^https?:\/\//i.test(file)) return { kind: "reference", value: file };
		return { kind: "path", path: file };
	}
	return { kind: "file", file };
}

/** The bytes with a file name and a media type; `fallbackName` names bytes that came without one. */
export async function resolveFile(file: FileInput, fallbackName: string): Promise<ResolvedFile> {
	const named = isNamed(file) ? file : { data: file };
	const raw = named.data instanceof ArrayBuffer ? new Uint8Array(named.data) : named.data;
	const filename = named.filename ?? (raw instanceof File && raw.name ? raw.name : fallbackName);
	const declared = named.contentType ?? (raw instanceof Blob && raw.type ? raw.type : undefined);
	const contentType = declared ?? contentTypeOfName(filename) ?? (await sniffed(raw));
	if (!contentType) {
		throw new TypeError(
			`${filename}: cannot tell its media type; pass { data, contentType } (one of ${[...new Set(Object.values(CONTENT_TYPES))].join(", ")}).`,
		);
	}
	return { data: raw, filename, contentType, ...(named.sha256 ? { sha256: named.sha256 } : {}) };
}

async function sniffed(data: Blob | Uint8Array): Promise<string | undefined> {
	const head = data instanceof Blob ? new Uint8Array(await data.slice(0, SNIFF_BYTES).arrayBuffer()) : data;
	return sniff(head.subarray(0, SNIFF_BYTES)) ?? undefined;
}
