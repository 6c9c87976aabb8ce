/**
 * Which URLs a webhook may target. Production: https only, and never a loopback, private or link-local host (the
 * Worker must not become a way to probe the network it runs beside). With `ALLOW_LOOPBACK_WEBHOOKS=true` (local
 * development and the tests) http and https to loopback are accepted too, so a receiver on 127.0.0.1 works.
 */

export type WebhookUrlRefusal = "malformed" | "not_https" | "private_host";

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

function isLoopback(hostname: string): boolean {
	return LOOPBACK_HOSTS.has(hostname) || /^127\.\d+\.\d+\.\d+$/.test(hostname) || hostname.endsWith(".localhost");
}

/** Hosts that name this machine or a private network by literal address or reserved name. */
function isPrivate(hostname: string): boolean {
	if (isLoopback(hostname)) return true;
	if (hostname.startsWith("[")) return true; // IPv6 literals: none is a legitimate public receiver worth the risk.
	const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(hostname);
	if (v4) {
		const [a, b] = [Number(v4[1]), Number(v4[2])];
		return (
			a === 0 ||
			a === 10 ||
			(a === 169 && b === 254) ||
			(a === 172 && b >= 16 && b <= 31) ||
			(a === 192 && b === 168) ||
			(a === 100 && b >= 64 && b <= 127)
		);
	}
	return hostname.endsWith(".internal") || hostname.endsWith(".local");
}

/** Checks a webhook URL; the caller turns a refusal into a problem (routes) or a failed delivery (the DO). */
export function checkWebhookUrl(
	raw: string,
	allowLoopback: boolean,
): { ok: true; url: URL } | { ok: false; reason: WebhookUrlRefusal } {
	let url: URL;
	try {
		url = new URL(raw);
	} catch {
		return { ok: false, reason: "malformed" };
	}
	if (url.username || url.password) return { ok: false, reason: "malformed" };
	const loopback = isLoopback(url.hostname);
	if (allowLoopback && loopback && (url.protocol === "http:" || url.protocol === "https:")) return { ok: true, url };
	if (url.protocol !== "https:") return { ok: false, reason: "not_https" };
	if (isPrivate(url.hostname)) return { ok: false, reason: "private_host" };
	return { ok: true, url };
}

/** The human sentence for a refusal (problem detail, delivery error). */
export function refusalMessage(reason: WebhookUrlRefusal): string {
	switch (reason) {
		case "malformed":
			return "The webhook URL is not a valid absolute URL without credentials.";
		case "not_https":
			return "The webhook URL must use https.";
		case "private_host":
			return "The webhook URL must point at a public host.";
	}
}
