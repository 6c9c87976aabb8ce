/**
 * No route buffers an unbounded body: every operation that takes a body (and the share route, which reads its
 * optional one itself) is sent an 8 MiB padded-JSON body under three content types, declared by Content-Length,
 * streamed without one, and streamed under a Content-Length that lies. Each answer is a 4xx problem, and the
 * client's stream is never read much past the 1 MiB limit.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { MAX_JSON_BODY_BYTES } from "../../src/lib/json-body-limit";
import { ADMIN, call, newAccount } from "../helpers/api";
import { runToSuccess, startJob } from "../helpers/notify";

const MiB = 1024 * 1024;
const TOTAL = 8 * MiB;
const CHUNK = 64 * 1024;
/** What the pipe may read ahead of the count (a chunk in flight on each side of the counting stream). */
const SLACK = 4 * CHUNK;
const TYPES = ["application/json", "text/plain", "application/octet-stream"];

/** 8 MiB of `{"pad":"xxx…"}`, as a stream of 64 KiB chunks that counts how much of it the server pulled. */
function paddedJson(total = TOTAL) {
	const open = new TextEncoder().encode('{"pad":"');
	const close = new TextEncoder().encode('"}');
	const filler = new TextEncoder().encode("x".repeat(CHUNK));
	let pulled = 0;
	const stream = new ReadableStream<Uint8Array>(
		{
			pull(controller) {
				if (pulled === 0) {
					controller.enqueue(open);
					pulled += open.length;
					return;
				}
				if (pulled + CHUNK + close.length > total) {
					controller.enqueue(close);
					controller.close();
					pulled += close.length;
					return;
				}
				controller.enqueue(filler);
				pulled += CHUNK;
			},
		},
		{ highWaterMark: 0 },
	);
	return { stream, pulled: () => pulled };
}

function whole(total = TOTAL): Uint8Array {
	const bytes = new Uint8Array(total).fill(0x78);
	bytes.set(new TextEncoder().encode('{"pad":"'));
	bytes.set(new TextEncoder().encode('"}'), total - 2);
	return bytes;
}

interface Operation {
	method: string;
	path: string;
}

let auth: Record<string, string>;
let operations: Operation[];
let succeededJob: string;

beforeAll(async () => {
	auth = await newAccount("body-limits");
	succeededJob = await startJob(auth, "pod-body-limits");
	await runToSuccess(succeededJob);
	const doc = (await (await call("/openapi.json")).json()) as {
		paths: Record<string, Record<string, { requestBody?: unknown }>>;
	};
	operations = [];
	for (const [path, ops] of Object.entries(doc.paths)) {
		for (const [method, op] of Object.entries(ops)) {
			if (op.requestBody || path === "/v1/jobs/{id}/share") operations.push({ method: method.toUpperCase(), path });
		}
	}
});

/** A concrete URL and the credentials that get each operation as far as reading its body. */
function target(op: Operation): { url: string; headers: Record<string, string> } {
	const url = op.path
		.replace("/v1/jobs/{id}/share", `/v1/jobs/${succeededJob}/share`)
		.replace(/\{key\}/, "uploads/acct/upl_x")
		.replace(/\{[^}]+\}/g, "body-limits-x")
		.replace(/^\/v1\/uploads\/inline$/, "/v1/uploads/inline?filename=pad.png");
	return { url, headers: url.startsWith("/v1/admin/") ? { ...ADMIN } : { ...auth } };
}

async function expectRefused(res: Response, label: string, allowed: number[]): Promise<void> {
	expect(allowed, `${label}: ${res.status} ${await res.clone().text()}`).toContain(res.status);
	expect(res.headers.get("content-type"), label).toBe("application/problem+json");
	await res.arrayBuffer();
}

describe("every route that takes a body, sent 8 MiB of padded JSON", () => {
	it("covers the routes that read bodies", () => {
		const names = operations.map((o) => `${o.method} ${o.path}`);
		expect(names).toContain("POST /v1/jobs");
		expect(names).toContain("POST /v1/jobs/{id}/share");
		expect(names).toContain("POST /v1/uploads");
		expect(operations.length).toBeGreaterThanOrEqual(8);
	});

	it.each(TYPES)("declared by Content-Length, as %s: 413 before a byte is read", async (type) => {
		const bytes = whole();
		for (const op of operations) {
			const { url, headers } = target(op);
			const label = `${op.method} ${op.path} (${type})`;
			const res = await call(url, {
				method: op.method,
				headers: { ...headers, "content-type": type, "content-length": String(bytes.length) },
				body: bytes,
			});
			// The routes that stream into R2 under their own cap refuse first on their own terms: a signed storage PUT
			// its URL (403), the one-request upload a type that is not media (415), an operator's model-file part a
			// request that names no upload key (400).
			const own = op.path.startsWith("/v1/storage/")
				? [403]
				: op.path === "/v1/uploads/inline"
					? [415]
					: op.path.startsWith("/v1/admin/model-files/") && op.path.includes("/parts/")
						? [400]
						: [413];
			await expectRefused(res, label, own);
		}
	});

	it.each(TYPES)(
		"streamed without Content-Length, as %s: refused, the stream read no further than the limit",
		async (type) => {
			for (const op of operations) {
				const { url, headers } = target(op);
				const label = `${op.method} ${op.path} (${type}, streamed)`;
				const body = paddedJson();
				const res = await call(url, {
					method: op.method,
					headers: { ...headers, "content-type": type },
					body: body.stream,
					duplex: "half",
				} as RequestInit);
				await expectRefused(res, label, [400, 403, 404, 409, 411, 413, 415, 422]);
				expect(body.pulled(), label).toBeLessThanOrEqual(MAX_JSON_BODY_BYTES + SLACK);
			}
		},
	);

	it.each(TYPES)(
		"streamed under a Content-Length that lies, as %s: the count, not the header, decides",
		async (type) => {
			for (const op of operations.filter((o) => !o.path.startsWith("/v1/storage/"))) {
				const { url, headers } = target(op);
				const label = `${op.method} ${op.path} (${type}, lying)`;
				const body = paddedJson();
				const res = await call(url, {
					method: op.method,
					headers: { ...headers, "content-type": type, "content-length": "100" },
					body: body.stream,
					duplex: "half",
				} as RequestInit);
				await expectRefused(res, label, [400, 403, 404, 409, 413, 415, 422]);
				expect(body.pulled(), label).toBeLessThanOrEqual(MAX_JSON_BODY_BYTES + SLACK);
			}
		},
	);
});

describe("POST /v1/jobs/{id}/share reads its optional body with the same limit", () => {
	it("answers 8 MiB of text/plain with 415 without reading it, and 8 MiB of JSON with 413", async () => {
		const plain = paddedJson();
		const res = await call(`/v1/jobs/${succeededJob}/share`, {
			method: "POST",
			headers: { ...auth, "content-type": "text/plain" },
			body: plain.stream,
			duplex: "half",
		} as RequestInit);
		expect(res.status).toBe(415);
		const problem = (await res.json()) as { detail: string };
		expect(problem.detail).toMatch(/application\/json/);
		// Nothing parsed: at most what the pipe pulled ahead before the refusal.
		expect(plain.pulled()).toBeLessThanOrEqual(SLACK);

		const json = paddedJson();
		const big = await call(`/v1/jobs/${succeededJob}/share`, {
			method: "POST",
			headers: { ...auth, "content-type": "application/json" },
			body: json.stream,
			duplex: "half",
		} as RequestInit);
		expect(big.status).toBe(413);
		await big.arrayBuffer();
		expect(json.pulled()).toBeLessThanOrEqual(MAX_JSON_BODY_BYTES + SLACK);

		const small = await call(`/v1/jobs/${succeededJob}/share`, {
			method: "POST",
			headers: auth,
			body: JSON.stringify({ expires_in_s: 120 }),
		});
		expect(small.status).toBe(200);
	});
});
