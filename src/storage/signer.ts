/**
 * Signed URLs into the bucket, behind one interface: the Worker-signed flavour (served by this Worker's
 * `/v1/storage/*` route) now, R2's S3-presigned flavour when R2 S3 credentials are configured.
 * Clients and GPU workers use whichever they get the same way: send `method` to `url` with `headers`.
 */
export interface SignedRequest {
	method: "PUT" | "GET";
	url: string;
	/** Headers the holder must send as given (they are part of what was signed). */
	headers: Record<string, string>;
	expires_at: string;
}

export interface SignPutOptions {
	contentType: string;
	/** Exact byte count the PUT must carry; when absent the PUT may carry up to `maxSize`. */
	size?: number;
	maxSize?: number;
	expiresInS: number;
	/**
	 * The PUT may create the object, never replace one. R2 presigned URLs sign `If-None-Match: *` into the headers
	 * the holder sends; Worker-signed URLs get the same rule from the storage route, which writes a job's video once.
	 */
	createOnly?: boolean;
}

export interface SignPartOptions {
	/** Exact byte count of the part (uploads, where every part's size is known). */
	size?: number;
	/** Largest byte count of the part (GPU outputs, whose last part's size is not known in advance). */
	maxSize?: number;
	expiresInS: number;
}

/** Which flavour signed a URL: `worker` (this Worker's `/v1/storage/*`) or `r2` (R2's S3 endpoint). */
export type SignerKind = "worker" | "r2";

export interface UrlSigner {
	readonly kind: SignerKind;
	/** A URL that stores the PUT body at `key`. */
	signPut(key: string, options: SignPutOptions): Promise<SignedRequest>;
	/**
	 * A URL that stores part `partNumber` of the multipart upload `uploadId` at `key`. The response carries
	 * the part's `ETag`. `size` is the exact byte count the part must have (enforced by the Worker-signed
	 * flavour; R2 checks equal part sizes at completion, and `complete` re-checks them).
	 */
	signPart(key: string, uploadId: string, partNumber: number, options: SignPartOptions): Promise<SignedRequest>;
	/** A URL that reads `key` (Range supported). */
	signGet(key: string, options: { expiresInS: number }): Promise<SignedRequest>;
}
