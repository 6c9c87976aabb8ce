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
}

export interface UrlSigner {
	/** A URL that stores the PUT body at `key`. */
	signPut(key: string, options: SignPutOptions): Promise<SignedRequest>;
	/** A URL that reads `key` (Range supported). */
	signGet(key: string, options: { expiresInS: number }): Promise<SignedRequest>;
}
