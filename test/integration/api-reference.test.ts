// What /openapi.json carries for the reference at /docs, and how /docs is served.
import { describe, expect, it } from "vitest";
import { REQUEST_EXAMPLES, TAG_GROUPS } from "../../src/openapi/reference";
import { call } from "../helpers/api";

interface Operation {
	tags?: string[];
	requestBody?: { content: Record<string, { example?: unknown }> };
	"x-codeSamples"?: { lang: string; label: string; source: string }[];
}
interface Document {
	tags: { name: string }[];
	"x-tagGroups": { name: string; tags: string[] }[];
	paths: Record<string, Record<string, Operation>>;
}

async function document(): Promise<Document> {
	const res = await call("/openapi.json");
	expect(res.status).toBe(200);
	return (await res.json()) as Document;
}

function operations(doc: Document) {
	return Object.entries(doc.paths).flatMap(([path, item]) =>
		Object.entries(item).map(([method, op]) => ({ key: `${method.toUpperCase()} ${path}`, op })),
	);
}

describe("/openapi.json for the reference", () => {
	it("groups the public API first and the admin and internal routes apart, every tag in a group", async () => {
		const doc = await document();
		const groups = doc["x-tagGroups"];
		expect(groups.map((g) => g.name)).toEqual(["API", "Administration", "Internal"]);
		expect(groups[0]?.tags.slice(0, 2)).toEqual(["Uploads", "Jobs"]);
		expect(groups[1]?.tags).toEqual(["Admin"]);
		const grouped = new Set(groups.flatMap((g) => g.tags));
		for (const { key, op } of operations(doc)) {
			for (const tag of op.tags ?? []) expect(grouped.has(tag), `${key}: tag ${tag} in no group`).toBe(true);
		}
		// Declared tags in the groups' order, and only tags that have operations.
		expect(doc.tags.map((t) => t.name)).toEqual(groups.flatMap((g) => g.tags));
		expect(TAG_GROUPS[0]?.name).toBe("API");
	});

	it("has an example body for every JSON request, and no example for an operation that is gone", async () => {
		const ops = operations(await document());
		for (const { key, op } of ops) {
			const json = op.requestBody?.content["application/json"];
			if (json) expect(json.example, `${key} has no request example`).toBeDefined();
		}
		const keys = new Set(ops.map((o) => o.key));
		for (const key of Object.keys(REQUEST_EXAMPLES)) expect(keys.has(key), `${key} no longer exists`).toBe(true);
	});

	it("has a TypeScript SDK and a Python client snippet for every operation", async () => {
		for (const { key, op } of operations(await document())) {
			const samples = op["x-codeSamples"] ?? [];
			expect(samples.map((s) => s.lang).sort(), key).toEqual(["python", "typescript"]);
			for (const s of samples) expect(s.source, key).not.toMatch(/\{[a-z_]+\}/);
		}
	});

	it("shows the client methods where there are some, and the admin token on admin routes", async () => {
		const doc = await document();
		const sample = (path: string, method: string, lang: string) =>
			doc.paths[path]?.[method]?.["x-codeSamples"]?.find((s) => s.lang === lang)?.source ?? "";
		expect(sample("/v1/jobs", "post", "typescript")).toContain('reelgate.run("preview"');
		expect(sample("/v1/jobs", "post", "python")).toContain('client.run("preview"');
		expect(sample("/v1/jobs/{id}/cancel", "post", "python")).toContain('client.cancel_job("job_');
		expect(sample("/v1/admin/keys", "post", "typescript")).toContain("process.env.ADMIN_TOKEN");
		expect(sample("/v1/admin/keys", "post", "typescript")).toContain('reelgate.request("POST", "/v1/admin/keys"');
		expect(sample("/v1/admin/keys", "post", "python")).toContain('"scopes": [');
	});
});

describe("/docs", () => {
	it("serves the renderer's page over /openapi.json with a policy that allows no other origin", async () => {
		const res = await call("/docs");
		expect(res.status).toBe(200);
		const html = await res.text();
		expect(html).toContain('<script id="api-reference" data-url="/openapi.json"');
		expect(html).toContain('<script src="/vendor/scalar/api-reference.js"></script>');
		const csp = res.headers.get("content-security-policy") ?? "";
		expect(csp).toContain("script-src 'self'");
		expect(csp).toContain("connect-src 'self'");
		expect(csp).toContain("frame-ancestors 'none'");
		expect(csp).not.toMatch(/https?:|\*/);
	});
});
