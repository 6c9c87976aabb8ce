import { describe, expect, it } from "vitest";
import { checkOutboundUrl } from "../../src/lib/url-guard";
import { HOSTILE_URLS, PUBLIC_URLS } from "../helpers/hostile-urls";

describe("checkOutboundUrl", () => {
	it.each(HOSTILE_URLS)("refuses %s (%s)", (url, reason) => {
		const check = checkOutboundUrl(url);
		expect(check.ok ? "ok" : check.reason).toBe(reason);
		if (!check.ok) expect(check.message).toMatch(/^The URL /);
	});

	it.each(PUBLIC_URLS)("allows %s", (url) => {
		expect(checkOutboundUrl(url).ok).toBe(true);
	});

	it("the loopback switch allows http and https to loopback, and nothing else private", () => {
		const allow = { allowLoopback: true };
		expect(checkOutboundUrl("http://127.0.0.1:8787/a.png", allow).ok).toBe(true);
		expect(checkOutboundUrl("http://localhost:9/a.png", allow).ok).toBe(true);
		expect(checkOutboundUrl("http://[::1]/a.png", allow).ok).toBe(true);
		expect(checkOutboundUrl("http://example.com/a.png", allow).ok).toBe(false);
		expect(checkOutboundUrl("https://10.0.0.1/a.png", allow).ok).toBe(false);
		expect(checkOutboundUrl("https://169.254.169.254/", allow).ok).toBe(false);
	});
});
