/**
 * Why `complete` pins an upload's verified bytes under a key of their own (docs/storage.md, "Verified bytes stay
 * verified"), shown on the R2 presigned path against a real S3 server (versitygw): a presigned PUT that was already
 * streaming when the bytes were verified still lands afterwards (S3 asks nobody), so refusing late writes cannot
 * work there. The pinned copy, made as `complete` makes it (bound to the etag it saw), is out of every URL's reach:
 * the late write changes the upload's own key only, and a URL re-aimed at the pinned key is refused.
 */
import { createHash } from "node:crypto";
import { request } from "node:http";
import {
	CompleteMultipartUploadCommand,
	CreateBucketCommand,
	CreateMultipartUploadCommand,
	GetObjectCommand,
	HeadObjectCommand,
	PutObjectCommand,
	S3Client,
} from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { R2PresignedUrlSigner } from "../../src/storage/r2-signer";
import { findVersitygw, type S3Server, startVersitygw } from "./versitygw";

const found = findVersitygw();
const BUCKET = "reelgate-race";
const MiB = 1024 * 1024;
const digest = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/**
 * A PUT that sends its first `head` bytes and resolves `sent` once they are on the wire; `finish()` sends the rest
 * and resolves with the status. The server has the request (and has authorised it) before the upload is verified.
 */
function slowPut(url: string, headers: Record<string, string>, bytes: Uint8Array, head: number) {
	let status: (code: number) => void = () => {};
	let failed: (err: unknown) => void = () => {};
	const answered = new Promise<number>((resolve, reject) => {
		status = resolve;
		failed = reject;
	});
	const req = request(
		url,
		{ method: "PUT", headers: { ...headers, "content-length": String(bytes.length) } },
		(res) => {
			res.resume();
			res.on("end", () => status(res.statusCode ?? 0));
		},
	);
	req.on("error", failed);
	const sent = new Promise<void>((resolve) => req.write(bytes.slice(0, head), () => resolve()));
	const finish = async () => {
		req.end(bytes.slice(head));
		return answered;
	};
	return { sent, finish };
}

describe.skipIf(!found.bin)("a presigned PUT racing complete (versitygw)", () => {
	let s3: S3Server;
	let client: S3Client;
	let signer: R2PresignedUrlSigner;

	beforeAll(async () => {
		s3 = await startVersitygw(found.bin as string);
		client = new S3Client({
			region: s3.region,
			endpoint: s3.endpoint,
			forcePathStyle: true,
			credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
		});
		signer = new R2PresignedUrlSigner({
			accessKeyId: s3.accessKeyId,
			secretAccessKey: s3.secretAccessKey,
			bucket: BUCKET,
			endpoint: s3.endpoint,
			region: s3.region,
		});
		await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
	});
	afterAll(async () => {
		client?.destroy();
		await s3?.close();
	});

	const read = async (key: string) => {
		const out = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
		return new Uint8Array(await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
	};

	/** What `complete` does (src/storage/pin.ts): copy the object, bound to the etag seen, to the pinned key. */
	async function pin(from: string, to: string): Promise<void> {
		const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: from }));
		const source = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: from, IfMatch: head.ETag }));
		const bytes = await (source.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray();
		await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: to, Body: bytes }));
	}

	it("single PUT: the late write lands on the upload's key, never on the pinned copy", async () => {
		const key = "uploads/acct/upl_race";
		const pinned = "verified/acct/upl_race/0123456789abcdef";
		const good = new Uint8Array(256 * 1024).map((_, i) => i % 251);
		const evil = new Uint8Array(good.length).fill(7);
		const put = await signer.signPut(key, { contentType: "image/png", size: good.length, expiresInS: 600 });
		expect((await fetch(put.url, { method: "PUT", headers: put.headers, body: good })).status).toBe(200);

		const late = slowPut(put.url, put.headers, evil, 1024);
		await late.sent;
		await pin(key, pinned);
		// S3 takes the late bytes: nothing on this path could have refused them.
		expect(await late.finish()).toBe(200);
		expect(digest(await read(key))).toBe(digest(evil));
		expect(digest(await read(pinned))).toBe(digest(good));

		// The URL cannot be re-aimed at the pinned key.
		const aimed = new URL(put.url);
		aimed.pathname = aimed.pathname.replace(key, pinned);
		const refused = await fetch(aimed, { method: "PUT", headers: put.headers, body: evil });
		expect(refused.status).toBe(403);
		expect(digest(await read(pinned))).toBe(digest(good));
	});

	it("multipart: a part still streaming when the upload is assembled does not change the assembled bytes", async () => {
		const key = "uploads/acct/upl_race_multi";
		const pinned = "verified/acct/upl_race_multi/0123456789abcdef";
		const created = await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
		const uploadId = created.UploadId as string;
		const good = new Uint8Array(5 * MiB + 4096).map((_, i) => (i * 31) % 251);
		const parts = [good.slice(0, 5 * MiB), good.slice(5 * MiB)];
		const targets = await Promise.all(
			parts.map((p, i) => signer.signPart(key, uploadId, i + 1, { size: p.length, expiresInS: 600 })),
		);
		const etags: string[] = [];
		for (const [i, t] of targets.entries()) {
			const res = await fetch(t.url, { method: "PUT", headers: t.headers, body: parts[i] });
			expect(res.status).toBe(200);
			etags.push(res.headers.get("etag") ?? "");
		}
		const first = targets[0];
		if (!first) throw new Error("no part 1");
		const late = slowPut(first.url, first.headers, new Uint8Array(5 * MiB).fill(7), 4096);
		await late.sent;
		await client.send(
			new CompleteMultipartUploadCommand({
				Bucket: BUCKET,
				Key: key,
				UploadId: uploadId,
				MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
			}),
		);
		await pin(key, pinned);
		// The late part goes to an upload that no longer exists (or is ignored): the assembled bytes stand.
		const status = await late.finish().catch(() => 0);
		expect(status).not.toBe(500);
		expect(digest(await read(key))).toBe(digest(good));
		expect(digest(await read(pinned))).toBe(digest(good));
	});
});
