import { checkOutboundUrl, type UrlCheck } from "../lib/url-guard";

/**
 * Which URLs a webhook may target: the same guard as every other URL the service calls (src/lib/url-guard.ts),
 * applied at job creation, on the test route and again before each delivery. With `ALLOW_LOOPBACK_WEBHOOKS=true`
 * (local development and the tests) http and https to loopback are accepted too, so a receiver on 127.0.0.1 works.
 */
export function checkWebhookUrl(raw: string, allowLoopback: boolean): UrlCheck {
	return checkOutboundUrl(raw, { allowLoopback });
}
