import { describe, expect, it } from "vitest";
import { checkFetchUrl } from "../../src/storage/ssrf";

describe("checkFetchUrl", () => {
	it.each([
		["http://example.com/a.png", "scheme"],
		["ftp://example.com/a.png", "scheme"],
		["file:///etc/passwd", "internal_name"],
		["https://user:pw@example.com/a.png", "credentials"],
		["not a url", "malformed"],
		["https://localhost/a.png", "loopback"],
		["https://foo.localhost/a.png", "loopback"],
		["https://127.0.0.1/a.png", "loopback"],
		["https://127.1/a.png", "loopback"],
		["https://2130706433/a.png", "loopback"],
		["https://0x7f000001/a.png", "loopback"],
		["https://0177.0.0.1/a.png", "loopback"],
		["https://0x7f.0.0.1/a.png", "loopback"],
		["https://[::1]/a.png", "loopback"],
		["https://[::ffff:127.0.0.1]/a.png", "loopback"],
		["https://[::ffff:7f00:1]/a.png", "loopback"],
		["https://0.0.0.0/a.png", "reserved"],
		["https://[::]/a.png", "reserved"],
		["https://10.1.2.3/a.png", "private_address"],
		["https://172.16.0.1/a.png", "private_address"],
		["https://172.31.255.255/a.png", "private_address"],
		["https://192.168.1.1/a.png", "private_address"],
		["https://100.64.0.1/a.png", "private_address"],
		["https://[fd00::1]/a.png", "private_address"],
		["https://[fc00::1]/a.png", "private_address"],
		["https://169.254.169.254/latest/meta-data/", "metadata"],
		["https://[::ffff:169.254.169.254]/", "metadata"],
		["https://[fd00:ec2::254]/", "metadata"],
		["https://[64:ff9b::a9fe:a9fe]/", "metadata"],
		["https://169.254.1.1/a.png", "link_local"],
		["https://[fe80::1]/a.png", "link_local"],
		["https://[2002:7f00:1::]/a.png", "loopback"],
		["https://224.0.0.1/a.png", "reserved"],
		["https://255.255.255.255/a.png", "reserved"],
		["https://metadata.google.internal/computeMetadata/v1/", "internal_name"],
		["https://printer.local/a.png", "internal_name"],
		["https://intranet/a.png", "internal_name"],
		["https://router.home.arpa/a.png", "internal_name"],
		["https://LOCALHOST./a.png", "loopback"],
	])("refuses %s (%s)", (url, reason) => {
		const check = checkFetchUrl(url);
		expect(check.ok ? "ok" : check.reason).toBe(reason);
		if (!check.ok) expect(check.message).toMatch(/^The URL /);
	});

	it.each([
		"https://example.com/a.png",
		"https://cdn.example.org:8443/x/y.wav?sig=1",
		"https://93.184.216.34/a.png",
		"https://[2606:2800:220:1:248:1893:25c8:1946]/a.png",
		"https://172.32.0.1/a.png",
		"https://11.0.0.1/a.png",
	])("allows %s", (url) => {
		expect(checkFetchUrl(url).ok).toBe(true);
	});

	it("the loopback switch allows http and https to loopback, and nothing else private", () => {
		const allow = { allowLoopback: true };
		expect(checkFetchUrl("http://127.0.0.1:8787/a.png", allow).ok).toBe(true);
		expect(checkFetchUrl("http://localhost:9/a.png", allow).ok).toBe(true);
		expect(checkFetchUrl("http://[::1]/a.png", allow).ok).toBe(true);
		expect(checkFetchUrl("http://example.com/a.png", allow).ok).toBe(false);
		expect(checkFetchUrl("https://10.0.0.1/a.png", allow).ok).toBe(false);
		expect(checkFetchUrl("https://169.254.169.254/", allow).ok).toBe(false);
	});
});
