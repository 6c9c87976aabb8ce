import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { signWebhook, verifyWebhook, WebhookVerificationError } from "../../sdk/index.ts";

// A real-looking secret: `whsec_` + base64 of 32 bytes.
const SECRET = `whsec_${Buffer.from("0123456789abcdef0123456789abcdef").toString("base64")}`;
const OTHER_SECRET = `whsec_${Buffer.from("fedcba9876543210fedcba9876543210").toString("base64")}`;
const BODY = JSON.stringify({ type: "job.succeeded", data: { id: "job_abc", status: "succeeded" } });
const ID = "msg_2Lq9x0";

function headersFor(id: string, timestamp: number, signature: string) {
	return { "webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": signature };
}

describe("verifyWebhook against the standardwebhooks reference library", () => {
	const now = new Date();
	const ts = Math.floor(now.getTime() / 1000);

	it("accepts what the reference library signs", async () => {
		const signature = new Webhook(SECRET).sign(ID, now, BODY);
		await expect(verifyWebhook(BODY, headersFor(ID, ts, signature), SECRET)).resolves.toEqual(JSON.parse(BODY));
	});

	it("signs what the reference library accepts", async () => {
		const signature = await signWebhook(ID, ts, BODY, SECRET);
		expect(signature).toBe(new Webhook(SECRET).sign(ID, now, BODY));
		expect(new Webhook(SECRET).verify(BODY, headersFor(ID, ts, signature))).toEqual(JSON.parse(BODY));
	});

	it("takes a Headers object and bytes", async () => {
		const signature = new Webhook(SECRET).sign(ID, now, BODY);
		const headers = new Headers(headersFor(ID, ts, signature));
		await expect(verifyWebhook(new TextEncoder().encode(BODY), headers, SECRET)).resolves.toBeTruthy();
	});

	it("accepts any one valid signature among several (secret rotation)", async () => {
		const old = await signWebhook(ID, ts, BODY, OTHER_SECRET);
		const current = new Webhook(SECRET).sign(ID, now, BODY);
		await expect(verifyWebhook(BODY, headersFor(ID, ts, `v2,abc ${old} ${current}`), SECRET)).resolves.toBeTruthy();
	});

	const rejected: [string, () => Promise<unknown>][] = [
		[
			"a tampered body",
			async () => verifyWebhook(`${BODY} `, headersFor(ID, ts, new Webhook(SECRET).sign(ID, now, BODY)), SECRET),
		],
		[
			"another message id",
			async () => verifyWebhook(BODY, headersFor("msg_other", ts, new Webhook(SECRET).sign(ID, now, BODY)), SECRET),
		],
		[
			"another secret",
			async () => verifyWebhook(BODY, headersFor(ID, ts, new Webhook(OTHER_SECRET).sign(ID, now, BODY)), SECRET),
		],
		[
			"a timestamp older than five minutes",
			async () => {
				const old = new Date(now.getTime() - 301_000);
				const oldTs = Math.floor(old.getTime() / 1000);
				return verifyWebhook(BODY, headersFor(ID, oldTs, new Webhook(SECRET).sign(ID, old, BODY)), SECRET);
			},
		],
		[
			"a timestamp from the future",
			async () => {
				const later = new Date(now.getTime() + 600_000);
				const laterTs = Math.floor(later.getTime() / 1000);
				return verifyWebhook(BODY, headersFor(ID, laterTs, new Webhook(SECRET).sign(ID, later, BODY)), SECRET);
			},
		],
		["missing headers", async () => verifyWebhook(BODY, {}, SECRET)],
		["a malformed signature", async () => verifyWebhook(BODY, headersFor(ID, ts, "v1,!!!notbase64"), SECRET)],
	];
	it.each(rejected)("rejects %s", async (_name, attempt) => {
		await expect(attempt()).rejects.toBeInstanceOf(WebhookVerificationError);
	});

	it("the reference library rejects our signature over a tampered body too", async () => {
		const signature = await signWebhook(ID, ts, BODY, SECRET);
		expect(() => new Webhook(SECRET).verify(`${BODY} `, headersFor(ID, ts, signature))).toThrow();
	});

	it("accepts an old timestamp within a custom tolerance", async () => {
		const old = new Date(now.getTime() - 400_000);
		const oldTs = Math.floor(old.getTime() / 1000);
		const headers = headersFor(ID, oldTs, new Webhook(SECRET).sign(ID, old, BODY));
		await expect(verifyWebhook(BODY, headers, SECRET, { toleranceS: 600 })).resolves.toBeTruthy();
	});
});
