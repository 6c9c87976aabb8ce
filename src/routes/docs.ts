import { newRouter } from "../app";

/**
 * `/docs`: the API reference, rendered in the browser by Scalar's API reference (its npm package's standalone
 * bundle, served from this origin at /vendor/scalar/, see scripts/lib/web-vendor.mjs) over `/openapi.json`. The
 * configuration keeps it offline: no web fonts, no telemetry, no hosted agent or proxy. The page loads nothing
 * from another origin, which its CSP enforces.
 */
const CONFIGURATION = {
	url: "/openapi.json",
	withDefaultFonts: false,
	telemetry: false,
	showDeveloperTools: "never",
	hideClientButton: true,
	agent: { disabled: true },
	mcp: { disabled: true },
	defaultHttpClient: { targetKey: "shell", clientKey: "curl" },
	featuredClients: ["shell/curl", "node/fetch", "python/requests"],
	// "Models" is an API tag here (the model catalog): the components section is the schemas.
	modelsSectionLabel: "Schemas",
	metaData: { title: "Reelgate API reference" },
};

const attribute = (value: string) => value.replaceAll("&", "&amp;").replaceAll("'", "&#39;");

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Reelgate API reference</title>
<link rel="icon" href="data:,">
</head>
<body>
<noscript><p>The API reference needs JavaScript. The OpenAPI document itself is at <a href="/openapi.json">/openapi.json</a>.</p></noscript>
<script id="api-reference" data-url="/openapi.json" data-configuration='${attribute(JSON.stringify(CONFIGURATION))}'></script>
<script src="/vendor/scalar/api-reference.js"></script>
</body>
</html>`;

/**
 * Scripts from this origin only; the renderer injects its styles and draws icons and images as data: and blob:
 * URLs; it calls this origin alone (the document and "try it" requests).
 */
const CSP = [
	"default-src 'none'",
	"script-src 'self'",
	"style-src 'self' 'unsafe-inline'",
	"img-src 'self' data: blob:",
	"font-src 'self' data:",
	"connect-src 'self'",
	"worker-src 'self' blob:",
	"base-uri 'none'",
	"form-action 'none'",
	"frame-ancestors 'none'",
].join("; ");

export const docsRoutes = newRouter();
docsRoutes.get("/docs", (c) =>
	c.html(PAGE, 200, { "cache-control": "public, max-age=300", "content-security-policy": CSP }),
);
