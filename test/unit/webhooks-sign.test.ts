import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { MAX_DELIVERY_ATTEMPTS, RETRY_SCHEDULE_MS, retryDelayMs } from "../../src/webhooks/schedule";
import { newWebhookSecret, SECRET_PREFIX, webhookHeaders } from "../../src/webhooks/sign";
import { checkWebhookUrl } from "../../src/webhooks/url";

describe("Standard Webhooks signatures, checked by the reference library (standardwebhooks)", () => {
	const body = JSON.stringify({ type: "job.succeeded", timestamp: new Date().toISOString(), data: { id: "job_x" } });
	const now = Math.floor(Date.now() / 1000);

	it("verify with the secret that signed them", async () => {
		const secret = newWebhookSecret();
		expect(secret.startsWith(SECRET_PREFIX)).toBe(true);
		const headers = await webhookHeaders([secret], "msg_1", now, body);
		expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
	});

	it("during a rotation carry both signatures, and either secret verifies", async () => {
		const [fresh, old] = [newWebhookSecret(), newWebhookSecret()];
		const headers = await webhookHeaders([fresh, old], "msg_2", now, body);
		expect(headers["webhook-signature"]).toMatch(/^v1,\S+ v1,\S+$/);
		expect(() => new Webhook(fresh).verify(body, headers)).not.toThrow();
		expect(() => new Webhook(old).verify(body, headers)).not.toThrow();
		expect(() => new Webhook(newWebhookSecret()).verify(body, headers)).toThrow();
	});

	it("fail for a changed body, id or timestamp", async () => {
		const secret = newWebhookSecret();
		const headers = await webhookHeaders([secret], "msg_3", now, body);
		const wh = new Webhook(secret);
		expect(() => wh.verify(`${body} `, headers)).toThrow();
		expect(() => wh.verify(body, { ...headers, "webhook-id": "msg_4" })).toThrow();
		expect(() => wh.verify(body, { ...headers, "webhook-timestamp": String(now + 1) })).toThrow();
	});
});

describe("the retry schedule", () => {
	it("grows with full jitter under the caps, never below 1 s, then gives up", () => {
		for (let attempt = 1; attempt < MAX_DELIVERY_ATTEMPTS; attempt++) {
			const cap = RETRY_SCHEDULE_MS[attempt - 1] ?? 0;
			expect(retryDelayMs(attempt, undefined, () => 1)).toBe(cap);
			expect(retryDelayMs(attempt, undefined, () => 0)).toBe(1000);
		}
		expect(retryDelayMs(MAX_DELIVERY_ATTEMPTS)).toBeNull();
	});

	it("honours Retry-After as a floor, capped", () => {
		expect(retryDelayMs(1, 60_000, () => 0)).toBe(60_000);
		expect(retryDelayMs(1, 10 ** 12, () => 0)).toBe(21_600_000);
	});
});

describe("webhook URLs", () => {
	it.each([
		["https://example.com/hook", false, true],
		["http://example.com/hook", false, false],
		["http://127.0.0.1:9000/hook", false, false],
		["http://127.0.0.1:9000/hook", true, true],
		["https://10.0.0.5/hook", true, false],
		["https://192.168.1.1/hook", false, false],
		["https://user:pw@example.com/hook", false, false],
		["not a url", true, false],
	])("%s (loopback switch %s) → accepted %s", (url, allow, ok) => {
		expect(checkWebhookUrl(url, allow).ok).toBe(ok);
	});
});
