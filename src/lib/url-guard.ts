/**
 * The one guard for every URL this service itself calls on a client's behalf: URL inputs (each redirect hop too),
 * webhook URLs (at job creation, on the webhook test route, and again before each delivery), and anything added
 * later. A Worker cannot resolve DNS itself, so the guard judges the URL as written: the scheme, credentials, the
 * hostname's form and, for IP literals, the address range. The WHATWG URL parser has already normalised the
 * numeric forms (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1` all become `127.0.0.1`; a trailing dot on an
 * address is dropped), so only dotted quads and bracketed IPv6 literals reach the range checks, and IPv4-mapped,
 * -compatible, NAT64 and 6to4 IPv6 forms are judged by the IPv4 address they carry. Pure, so the hostile-URL
 * tables are unit tests.
 *
 * Address ranges: every entry of IANA's special-purpose registries
 * (https://www.iana.org/assignments/iana-ipv4-special-registry/ and
 * https://www.iana.org/assignments/iana-ipv6-special-registry/), plus multicast, which is never a fetch target.
 * Names: `localhost` and `*.localhost` (RFC 6761), `.local` (mDNS, RFC 6762), `.internal` (reserved for private use,
 * https://www.icann.org/en/board-activities-and-meetings/materials/approved-resolutions-special-meeting-of-the-icann-board-29-07-2024-en),
 * `.lan`, `.intranet`, `.corp`, `.home.arpa` and all of `.arpa`, and single-label names (they resolve through
 * search domains to intranet hosts); each with any number of trailing dots.
 */

/** Why a URL was refused. */
export type UrlRefusal =
	| "malformed"
	| "scheme"
	| "credentials"
	| "private_address"
	| "loopback"
	| "link_local"
	| "metadata"
	| "reserved"
	| "internal_name";

export type UrlCheck = { ok: true; url: URL } | { ok: false; reason: UrlRefusal; message: string };

/** [network, prefix length, refusal] for IPv4; first match wins. */
const V4_BLOCKS: [number, number, UrlRefusal][] = [
	[ip4("169.254.169.254"), 32, "metadata"],
	[ip4("0.0.0.0"), 8, "reserved"], // "this network"
	[ip4("10.0.0.0"), 8, "private_address"],
	[ip4("100.64.0.0"), 10, "private_address"], // shared address space (CGNAT)
	[ip4("127.0.0.0"), 8, "loopback"],
	[ip4("169.254.0.0"), 16, "link_local"],
	[ip4("172.16.0.0"), 12, "private_address"],
	[ip4("192.0.0.0"), 24, "reserved"], // IETF protocol assignments
	[ip4("192.0.2.0"), 24, "reserved"], // documentation
	[ip4("192.31.196.0"), 24, "reserved"], // AS112
	[ip4("192.52.193.0"), 24, "reserved"], // AMT
	[ip4("192.88.99.0"), 24, "reserved"], // 6to4 relay anycast
	[ip4("192.168.0.0"), 16, "private_address"],
	[ip4("192.175.48.0"), 24, "reserved"], // AS112 direct delegation
	[ip4("198.18.0.0"), 15, "reserved"], // benchmarking
	[ip4("198.51.100.0"), 24, "reserved"], // documentation
	[ip4("203.0.113.0"), 24, "reserved"], // documentation
	[ip4("224.0.0.0"), 4, "reserved"], // multicast
	[ip4("240.0.0.0"), 4, "reserved"], // reserved, and the limited broadcast 255.255.255.255
];

function ip4(dotted: string): number {
	return dotted.split(".").reduce((n, part) => n * 256 + Number(part), 0);
}

function v4Refusal(address: number): UrlRefusal | null {
	for (const [network, prefix, reason] of V4_BLOCKS) {
		const size = 2 ** (32 - prefix);
		if (Math.floor(address / size) === Math.floor(network / size)) return reason;
	}
	return null;
}

/** The 8 groups of an IPv6 literal (as the URL parser prints it, compressed, maybe with a dotted tail). */
function v6Groups(literal: string): number[] | null {
	let text = literal.toLowerCase();
	const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
	if (dotted?.[1]) {
		const n = ip4(dotted[1]);
		text = `${text.slice(0, -dotted[1].length)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
	}
	const [left = "", right, ...rest] = text.split("::");
	if (rest.length > 0) return null;
	const head = left ? left.split(":") : [];
	const tail = right ? right.split(":") : [];
	const fill = right === undefined ? 0 : 8 - head.length - tail.length;
	if (fill < 0) return null;
	const groups = [...head, ...Array(fill).fill("0"), ...tail].map((g) => Number.parseInt(g, 16));
	return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : null;
}

function v6Refusal(g: number[]): UrlRefusal | null {
	const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = g;
	const embedded = g6 * 0x10000 + g7;
	if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0) {
		if (g5 === 0 && g6 === 0 && g7 <= 1) return g7 === 1 ? "loopback" : "reserved"; // ::1 and ::
		// IPv4-mapped (::ffff:a.b.c.d) and the deprecated IPv4-compatible (::a.b.c.d): never fetched as such.
		if (g5 === 0xffff || g5 === 0) return v4Refusal(embedded) ?? "reserved";
	}
	if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) {
		return v4Refusal(embedded) ?? "reserved"; // NAT64 well-known prefix 64:ff9b::/96
	}
	if (g0 === 0x64 && g1 === 0xff9b && g2 === 1) return "reserved"; // local-use NAT64 64:ff9b:1::/48
	if (g0 === 0x100 && g1 === 0 && g2 === 0 && (g3 === 0 || g3 === 1)) return "reserved"; // discard-only, dummy
	if (g0 === 0xfd00 && g1 === 0x0ec2 && g7 === 0x0254) return "metadata"; // AWS IMDS over IPv6 (fd00:ec2::254)
	if ((g0 & 0xfe00) === 0xfc00) return "private_address"; // unique local fc00::/7
	if ((g0 & 0xffc0) === 0xfe80) return "link_local";
	if ((g0 & 0xffc0) === 0xfec0) return "private_address"; // deprecated site-local
	if ((g0 & 0xff00) === 0xff00) return "reserved"; // multicast
	if (g0 === 0x2001 && g1 < 0x200) return "reserved"; // IETF protocol assignments 2001::/23 (Teredo, ORCHID, …)
	if (g0 === 0x2001 && g1 === 0x0db8) return "reserved"; // documentation
	if (g0 === 0x2002) return v4Refusal((g1 << 16) + g2) ?? "reserved"; // 6to4 wraps an IPv4 address
	if (g0 === 0x2620 && g1 === 0x4f && g2 === 0x8000) return "reserved"; // AS112 direct delegation
	if (g0 === 0x3fff && g1 < 0x1000) return "reserved"; // documentation 3fff::/20
	if (g0 === 0x5f00) return "reserved"; // SRv6 SIDs
	return null;
}

const BLOCKED_SUFFIXES = [".localhost", ".local", ".internal", ".intranet", ".lan", ".arpa", ".corp"];
const MESSAGES: Record<UrlRefusal, string> = {
	malformed: "is not a valid absolute URL",
	scheme: "must use https",
	credentials: "must not carry a user name or password",
	private_address: "points at a private network address",
	loopback: "points at a loopback address",
	link_local: "points at a link-local address",
	metadata: "points at a cloud metadata service",
	reserved: "points at a reserved or non-routable address",
	internal_name: "names an internal host",
};

function refuse(reason: UrlRefusal, raw: string): UrlCheck {
	return { ok: false, reason, message: `The URL ${raw.slice(0, 200)} ${MESSAGES[reason]}.` };
}

/**
 * Whether the Worker may call `raw`: https to a public host name or public IP literal, without credentials. With
 * `allowLoopback` (local development and the tests only), http and https to loopback (`localhost`, 127/8, ::1)
 * also pass.
 */
export function checkOutboundUrl(raw: string, options: { allowLoopback?: boolean } = {}): UrlCheck {
	let url: URL;
	try {
		url = new URL(raw);
	} catch {
		return refuse("malformed", raw);
	}
	if (url.username || url.password) return refuse("credentials", raw);
	// Any number of trailing dots: `localhost.` and `localhost..` are `localhost` to a resolver.
	const host = url.hostname.toLowerCase().replace(/\.+$/, "");
	let reason: UrlRefusal | null;
	if (host.startsWith("[")) {
		const groups = v6Groups(host.slice(1, -1));
		reason = groups ? v6Refusal(groups) : "malformed";
	} else if (/^\d+\.\d+\.\d+\.\d+$/.test(host)) {
		reason = v4Refusal(ip4(host));
	} else if (host === "localhost") {
		reason = "loopback";
	} else if (!host.includes(".") || BLOCKED_SUFFIXES.some((s) => host.endsWith(s))) {
		// Single-label names resolve through search domains to intranet hosts.
		reason = host.endsWith(".localhost") ? "loopback" : "internal_name";
	} else {
		reason = null;
	}
	const loopbackAllowed = options.allowLoopback === true && reason === "loopback";
	if (reason && !loopbackAllowed) return refuse(reason, raw);
	if (url.protocol !== "https:" && !(loopbackAllowed && url.protocol === "http:")) return refuse("scheme", raw);
	return { ok: true, url };
}
