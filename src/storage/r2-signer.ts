import { AwsClient } from "aws4fetch";
import type { S3Config } from "../config/s3";
import type { SignedRequest, SignPartOptions, SignPutOptions, UrlSigner } from "./signer";

/*
 * R2's S3-presigned URLs (SigV4 in the query, made with aws4fetch). Pure: no workerd-only API, so the Node
 * test suite (test/s3) runs it against a real S3 server and compares it with the AWS SDK's presigner.
 *
 * What is signed: method, host, path, expiry and, for a PUT of an upload, the Content-Type (aws4fetch leaves
 * content-type unsigned unless `allHeaders`, so the client could otherwise store any type). R2 has no POST
 * policy, so the size cannot be capped here: `complete` checks it (and every part size) after the transfer.
 */

/** The longest expiry S3 SigV4 (and R2) accept: 7 days. */
export const MAX_PRESIGN_S = 7 * 24 * 3600;

/** S3 path encoding: each key segment percent-encoded per RFC 3986, slashes kept. */
export function encodeS3Key(key: string): string {
	return key
		.split("/")
		.map((s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
		.join("/");
}

/** SigV4's `X-Amz-Date` form of a time: `YYYYMMDDTHHMMSSZ`. */
export function amzDate(ms: number): string {
	return new Date(ms)
		.toISOString()
		.replace(/[-:]/g, "")
		.replace(/\.\d{3}/, "");
}

/** One stored part of a multipart upload, as S3 ListParts reports it. */
export interface ListedPart {
	partNumber: number;
	/** Without quotes. */
	etag: string;
	size: number;
}

/** Presigns R2 (S3) URLs; also lists a multipart upload's parts through the S3 API. */
export class R2PresignedUrlSigner implements UrlSigner {
	readonly kind = "r2" as const;
	readonly #config: S3Config;
	readonly #client: AwsClient;
	readonly #now: () => number;

	constructor(config: S3Config, now: () => number = Date.now) {
		this.#config = config;
		// Service and region are explicit: aws4fetch only guesses them for `*.r2.cloudflarestorage.com` hosts.
		this.#client = new AwsClient({
			accessKeyId: config.accessKeyId,
			secretAccessKey: config.secretAccessKey,
			service: "s3",
			region: config.region,
		});
		this.#now = now;
	}

	/** The path-style URL of `key` (R2 presigned URLs work on the account endpoint only, not custom domains). */
	objectUrl(key: string): URL {
		return new URL(`${this.#config.endpoint}/${encodeURIComponent(this.#config.bucket)}/${encodeS3Key(key)}`);
	}

	/** A presigned PUT of `key` that only accepts the signed Content-Type (and only creates, when asked). */
	async signPut(key: string, options: SignPutOptions): Promise<SignedRequest> {
		const headers: Record<string, string> = { "content-type": options.contentType };
		if (options.createOnly) headers["if-none-match"] = "*";
		return this.#presign("PUT", this.objectUrl(key), options.expiresInS, headers);
	}

	/** A presigned `UploadPart`; the client reads the part's `ETag` from the response. */
	async signPart(key: string, uploadId: string, partNumber: number, options: SignPartOptions): Promise<SignedRequest> {
		const url = this.objectUrl(key);
		url.searchParams.set("partNumber", String(partNumber));
		url.searchParams.set("uploadId", uploadId);
		return this.#presign("PUT", url, options.expiresInS, {});
	}

	/** A presigned GET (and HEAD is not covered: SigV4 signs the method). */
	async signGet(key: string, options: { expiresInS: number }): Promise<SignedRequest> {
		return this.#presign("GET", this.objectUrl(key), options.expiresInS, {});
	}

	/**
	 * The parts stored so far of multipart upload `uploadId` (S3 ListParts, paged), for resume and for
	 * `complete` in the R2 flavour, where the parts never pass through the Worker.
	 */
	async listParts(key: string, uploadId: string, fetcher: typeof fetch = fetch): Promise<ListedPart[]> {
		const parts: ListedPart[] = [];
		let marker = "0";
		for (let page = 0; page < 20; page++) {
			const url = this.objectUrl(key);
			url.searchParams.set("uploadId", uploadId);
			url.searchParams.set("max-parts", "1000");
			url.searchParams.set("part-number-marker", marker);
			const response = await fetcher(await this.#client.sign(url.toString(), { method: "GET" }));
			const xml = await response.text();
			if (!response.ok) throw new Error(`S3 ListParts answered ${response.status}: ${xml.slice(0, 200)}`);
			for (const m of xml.matchAll(/<Part>([\s\S]*?)<\/Part>/g)) {
				const body = m[1] ?? "";
				const field = (name: string) => new RegExp(`<${name}>([^<]*)</${name}>`).exec(body)?.[1] ?? "";
				parts.push({
					partNumber: Number(field("PartNumber")),
					etag: field("ETag").replace(/&quot;|&#34;|"/g, ""),
					size: Number(field("Size")),
				});
			}
			if (!/<IsTruncated>true<\/IsTruncated>/.test(xml)) break;
			marker = /<NextPartNumberMarker>(\d+)<\/NextPartNumberMarker>/.exec(xml)?.[1] ?? "";
			if (!marker) break;
		}
		return parts.sort((a, b) => a.partNumber - b.partNumber);
	}

	async #presign(
		method: "PUT" | "GET",
		url: URL,
		expiresInS: number,
		headers: Record<string, string>,
	): Promise<SignedRequest> {
		const now = this.#now();
		const expires = Math.min(MAX_PRESIGN_S, Math.max(1, Math.floor(expiresInS)));
		url.searchParams.set("X-Amz-Expires", String(expires));
		// As the AWS SDK's presigner does: the payload is not signed (the size and sha256 are checked after).
		url.searchParams.set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD");
		const signed = await this.#client.sign(url.toString(), {
			method,
			headers,
			// `allHeaders` makes the given headers (Content-Type, If-None-Match) part of the signature.
			aws: { signQuery: true, allHeaders: true, datetime: amzDate(now) },
		});
		return {
			method,
			url: signed.url,
			headers,
			expires_at: new Date(Math.floor(now / 1000) * 1000 + expires * 1000).toISOString(),
		};
	}
}
