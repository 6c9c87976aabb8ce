/**
 * One guard for every outbound URL (src/lib/url-guard.ts): each hostile URL of the shared table is refused, as a
 * 422 problem naming the field and the reason, at every place a client can give one (a job's URL input, a job's
 * LoRAs, a job's webhook, the webhook test route), and a webhook URL is checked again before each delivery.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import type { WebhookOutbox } from "../../durable-objects/job/outbox";
import { sendDueDeliveries } from "../../durable-objects/job/webhook-sender";
import worker from "../../src/index";
import type { JobSpec } from "../../src/jobs/record";
import { createLogger } from "../../src/lib/logger";
import { newAccount } from "../helpers/api";

/** Production's setting: the test env lets webhooks reach a loopback receiver; here nothing private may pass. */
const STRICT = { ...env, ALLOW_LOOPBACK_WEBHOOKS: "false", ALLOW_LOOPBACK_URL_INPUTS: "false" } as Env;

async function call(path: string, init: RequestInit): Promise<Response> {
	const ctx = createExecutionContext();
	const res = await worker.fetch(new Request(`http://reelgate.test${path}`, init), STRICT, ctx);
	await waitOnExecutionContext(ctx);
	return res;
}

import { HOSTILE_URLS } from "../helpers/hostile-urls";

interface Problem {
	status: number;
	code: string;
	detail: string;
	errors?: { path: string; message: string }[];
}

/** The same refusal everywhere: 422 naming the field, or 400 for what the request schema already refuses. */
async function expectRefused(res: Response, url: string, field: string): Promise<Problem> {
	expect(res.headers.get("content-type"), url).toBe("application/problem+json");
	const p = (await res.json()) as Problem;
	expect([400, 422], `${url}: ${p.status} ${p.detail}`).toContain(p.status);
	expect(
		p.errors?.map((e) => e.path),
		url,
	).toContain(`json.${field}`);
	if (p.status === 422) {
		expect(p.code, url).toBe("unprocessable");
		expect(p.detail.startsWith(`${field}: The URL `), `${url}: ${p.detail}`).toBe(true);
	}
	return p;
}

/** Posts `bodyOf(url)` to `path` for every hostile URL, each refused at `field`; how many the URL guard refused (422). */
async function refuseEvery(
	path: string,
	headers: Record<string, string>,
	field: string,
	bodyOf: (url: string) => unknown,
): Promise<number> {
	let guarded = 0;
	for (const [url] of HOSTILE_URLS) {
		const res = await call(path, { method: "POST", headers, body: JSON.stringify(bodyOf(url)) });
		if ((await expectRefused(res, url, field)).status === 422) guarded++;
	}
	return guarded;
}

// Keys per place: each is charged one job creation per row, within the test env's per-minute quota.
let inputKey: Record<string, string>;
let webhookKey: Record<string, string>;
let testKey: Record<string, string>;
let loraKey: Record<string, string>;
beforeAll(async () => {
	loraKey = await newAccount("guard-lora");
	inputKey = await newAccount("guard-input");
	webhookKey = await newAccount("guard-webhook");
	testKey = await newAccount("guard-test");
});

describe("every hostile URL, at every place that takes a URL", () => {
	it("has at least 60 of them", () => {
		expect(HOSTILE_URLS.length).toBeGreaterThanOrEqual(60);
	});

	it("a job's URL input (input.image): 422, nothing fetched", async () => {
		const guarded = await refuseEvery("/v1/jobs", inputKey, "input.image", (url) => ({
			model: "preview",
			input: { image: url },
		}));
		// A string that is not an http(s) URL is an upload id to the schema: it names no upload.
		expect(guarded).toBeGreaterThanOrEqual(HOSTILE_URLS.length - 8);
	});

	it("a job's LoRA (input.loras[0].url): 422, nothing fetched", async () => {
		const guarded = await refuseEvery("/v1/jobs", loraKey, "input.loras[0].url", (url) => ({
			model: "wan2.2-i2v",
			input: { image: "upl_none", loras: [{ url }] },
		}));
		// The request schema takes any string as a LoRA's URL: every refusal is the guard's.
		expect(guarded).toBe(HOSTILE_URLS.length);
	});

	it("a job's webhook (webhook.url): 422", async () => {
		await refuseEvery("/v1/jobs", webhookKey, "webhook.url", (url) => ({
			model: "preview",
			input: { image: "upl_none" },
			webhook: { url },
		}));
	});

	it("the webhook test route (url): 422, nothing sent", async () => {
		await refuseEvery("/v1/webhooks/test", testKey, "url", (url) => ({ url }));
	});

	it("each delivery checks the job's webhook URL again, and fails it without a request", async () => {
		const spec = { id: "job_guard", account_id: "guard-webhook", origin: "https://reelgate.test" } as JobSpec;
		for (const [url, reason] of HOSTILE_URLS) {
			const failed: string[] = [];
			const outbox = {
				due: () => [{ id: "msg_guard", type: "job.succeeded", body: "{}", attempts: 0 }],
				fail: (_id: string, error: string) => failed.push(error),
			} as unknown as WebhookOutbox;
			const sent = await sendDueDeliveries(
				outbox,
				STRICT,
				{ ...spec, webhook: { url } },
				createLogger({ test: "url-guard" }),
			);
			expect(sent, url).toBe(true);
			expect(failed, `${url} (${reason})`).toHaveLength(1);
			expect(failed[0], url).toMatch(/^The URL /);
		}
	});
});
