// Data for the fuzz run: an API key whose account will not hit the rate limits, a ready image upload, a pending
// audio upload and a succeeded job, so the `{id}` routes answer with real resources rather than only 404.
import { makePng, makeWav } from "../e2e/media";
import type { Stack } from "../e2e/stack";

export interface Seed {
	apiKey: string;
	account: string;
	/** False when the API has no account limits route yet (the run may then meet 429s). */
	limitsRaised: boolean;
	imageUploadId: string;
	pendingUploadId: string;
	jobId: string;
}

const ACCOUNT = "fuzz";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function call(stack: Stack, token: string, method: string, path: string, body?: unknown): Promise<unknown> {
	const res = await fetch(`${stack.url}${path}`, {
		method,
		headers: {
			authorization: `Bearer ${token}`,
			...(body === undefined ? {} : { "content-type": "application/json" }),
		},
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	const text = await res.text();
	if (!res.ok) throw new Error(`seed: ${method} ${path} answered ${res.status}: ${text}`);
	return text ? JSON.parse(text) : undefined;
}

interface CreatedUpload {
	id: string;
	upload?: { method: string; url: string; headers: Record<string, string> };
}

async function createUpload(stack: Stack, key: string, filename: string, contentType: string, bytes: Buffer) {
	const created = (await call(stack, key, "POST", "/v1/uploads", {
		filename,
		content_type: contentType,
		size: bytes.length,
	})) as CreatedUpload;
	if (!created.upload) throw new Error(`seed: upload ${created.id} has no single-PUT target`);
	return { id: created.id, target: created.upload };
}

export async function seedFuzzData(stack: Stack): Promise<Seed> {
	const admin = stack.adminToken;
	const { key: apiKey } = (await call(stack, admin, "POST", "/v1/admin/keys", { name: "fuzz", account: ACCOUNT })) as {
		key: string;
	};

	// Thousands of requests in a few minutes: lift the account's limits where the API has them.
	const schema = (await (await fetch(`${stack.url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
	const limitsRaised = "/v1/admin/accounts/{account}/limits" in schema.paths;
	if (limitsRaised) {
		await call(stack, admin, "PUT", `/v1/admin/accounts/${ACCOUNT}/limits`, {
			requests_per_minute: 1_000_000,
			jobs_per_minute: 1_000_000,
			max_concurrent_jobs: 1_000_000,
			monthly_spend_cap_usd: null,
		});
	}

	const image = await createUpload(stack, apiKey, "still.png", "image/png", makePng(64, 64));
	const put = await fetch(image.target.url, {
		method: image.target.method,
		headers: image.target.headers,
		body: makePng(64, 64),
	});
	if (!put.ok) throw new Error(`seed: PUT of the image answered ${put.status}: ${await put.text()}`);
	await call(stack, apiKey, "POST", `/v1/uploads/${image.id}/complete`);
	const pending = await createUpload(stack, apiKey, "tone.wav", "audio/wav", makeWav(1));

	let job = (await call(stack, apiKey, "POST", "/v1/jobs", { model: "preview", input: { image: image.id } })) as {
		id: string;
		status: string;
	};
	const deadline = Date.now() + 180_000;
	while (!["succeeded", "failed", "canceled"].includes(job.status)) {
		if (Date.now() > deadline) throw new Error(`seed: job ${job.id} still ${job.status} after 180 s`);
		await sleep(500);
		job = (await call(stack, apiKey, "GET", `/v1/jobs/${job.id}`)) as typeof job;
	}
	if (job.status !== "succeeded") throw new Error(`seed: job ${job.id} ended ${job.status}: ${JSON.stringify(job)}`);
	return {
		apiKey,
		account: ACCOUNT,
		limitsRaised,
		imageUploadId: image.id,
		pendingUploadId: pending.id,
		jobId: job.id,
	};
}
