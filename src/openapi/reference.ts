/**
 * What `/openapi.json` adds for readers of the API reference (`/docs`): tags in the order a client meets them,
 * grouped so the public API comes first and the admin and internal routes stand apart (`x-tagGroups`), an example
 * body for every request that takes JSON, and per operation a TypeScript SDK and a Python client snippet
 * (`x-codeSamples`; the renderer adds its own curl, fetch and requests ones from the same examples).
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { SHIPPED_MANIFESTS } from "../models/shipped";

type ApiDocument = ReturnType<OpenAPIHono["getOpenAPI31Document"]>;
type PathItem = NonNullable<ApiDocument["paths"]>[string];
type Operation = NonNullable<PathItem["get"]>;

const METHODS = ["get", "put", "post", "delete", "patch"] as const;

/** The reference's introduction: what a first request needs, and the shape of the whole flow. */
const INTRODUCTION = `Upload an image (and audio), start a video job on a GPU backend, follow it, download the video.

**Authentication.** Send \`Authorization: Bearer <API key>\` (on the local stack, \`npm run keys -- create --name me\`
makes one); the Admin routes take the \`ADMIN_TOKEN\` instead.

**The flow.** Upload each file (\`POST /v1/uploads\`, PUT the bytes to the URL it answers with, then
\`POST /v1/uploads/{id}/complete\`), or name an https URL instead; start the job with \`POST /v1/jobs\` and an
\`Idempotency-Key\`; follow it (\`GET /v1/jobs/{id}/events\`, polling, or a webhook); download the video
(\`GET /v1/jobs/{id}/video\`) or hand out its \`share_url\`. The models and their parameters: \`GET /v1/models\`.

**In one call.** \`await new Reelgate().run("preview", { image: "still.png" })\` (TypeScript, \`sdk/node.ts\`),
\`reelgate.Client().run("preview", {"image": "still.png"})\` (Python, \`pip install ./clients/python\`),
\`npm run reelgate -- run preview --image still.png\` (the CLI). Each operation below shows its curl, fetch and
requests forms and these clients' calls.

**Errors** are RFC 9457 problems (\`application/problem+json\`) with a stable \`code\`. A refused request's
\`detail\` names each field and its rule (\`input.fps: must be at least 1.\`); \`errors[]\` lists every field.`;

/** Tags in reading order, with what each holds; the groups below decide where each appears. */
const TAGS: { name: string; description: string }[] = [
	{ name: "Uploads", description: "Images and audio in: upload the bytes, then name the upload in a job." },
	{
		name: "Jobs",
		description: "Start a video job, follow it (polling, events, webhooks), download or share the video.",
	},
	{ name: "Webhooks", description: "The signing secret of your webhooks, and a test delivery." },
	{
		name: "Models",
		description: "The models you can run, with their parameters and whether a backend serves them now.",
	},
	{ name: "Limits", description: "Your rate limits, concurrency and spend cap." },
	{ name: "Usage", description: "Jobs, GPU time and cost over a window." },
	{ name: "Service", description: "Liveness." },
	{ name: "Admin", description: "API keys, GPU backends, account limits, usage and stats: the `ADMIN_TOKEN` routes." },
	{ name: "Storage", description: "Signed upload and download URLs served by the Worker itself (no API key)." },
	{ name: "Internal", description: "Callbacks from GPU providers; never called by clients." },
];

export const TAG_GROUPS: { name: string; tags: string[] }[] = [
	{ name: "API", tags: ["Uploads", "Jobs", "Webhooks", "Models", "Limits", "Usage", "Service"] },
	{ name: "Administration", tags: ["Admin"] },
	{ name: "Internal", tags: ["Storage", "Internal"] },
];

const JOB_ID = "job_0a1b2c3d4e5f6g7h8i9j";
const IMAGE_ID = "upl_3j9x0c2v5b8n1m4k7l0p2q5r8s";
const AUDIO_ID = "upl_8s5r2q0p7l4k1m8n5b2v9c0x3j";

/**
 * Example JSON bodies by operation (`METHOD path`); every JSON request body needs one (tested). Hosts are under the
 * reserved `.example` domain, which never resolves: a fuzzer replaying the examples sends nothing anywhere.
 */
export const REQUEST_EXAMPLES: Record<string, unknown> = {
	"POST /v1/uploads": { filename: "still.png", content_type: "image/png", size: 48213 },
	"POST /v1/jobs": {
		model: "preview",
		input: { image: IMAGE_ID, audio: AUDIO_ID, prompt: "a slow push-in", resolution: "512x512", duration_s: 3 },
		webhook: { url: "https://your-app.example/hooks/reelgate", events: ["succeeded", "failed"] },
	},
	"POST /v1/webhooks/test": { url: "https://your-app.example/hooks/reelgate" },
	"POST /v1/admin/keys": { name: "my-app", account: "acme", scopes: ["jobs:read", "jobs:write"] },
	"PUT /v1/admin/backends/{name}": {
		kind: "pod",
		priority: 10,
		models: ["wan2.2-i2v", "wan2.2-s2v"],
		max_concurrency: 4,
		config: { url: "https://gpu-1.your-cloud.example", token: "…" },
	},
	"PUT /v1/admin/accounts/{account}/limits": { max_concurrent_jobs: 10, monthly_spend_cap_usd: 250 },
	// The shipped manifest itself: registering it again, unchanged, is harmless.
	"PUT /v1/admin/models/{id}": SHIPPED_MANIFESTS.find((m) => m.id === "wan2.2-i2v"),
	"POST /v1/admin/models/{id}/validate": { backend: "gpu-1" },
	"POST /v1/admin/model-files": {
		folder: "unet",
		name: "my-finetune-Q4_K_M.gguf",
		size: 9651728896,
		sha256: "0c170a4ae4228a7d30a2cb4dded6eb2bc48ccb1ce761445bb092ff7c5dd4f47b",
	},
	"POST /v1/admin/model-files/{upload_id}/complete": {
		parts: [{ part_number: 1, etag: "0f343b0931126a20f133d67c2b018a3b" }],
	},
	"POST /v1/storage/{key}": { size: 140_509_184, part_size: 67_108_864 },
};

/** Path parameter values for the snippets where the schema gives none. */
const PARAM_EXAMPLES: Record<string, string> = {
	id: JOB_ID,
	job_id: JOB_ID,
	name: "gpu-1",
	account: "acme",
	key: "uploads/acct_…/upl_…",
};

/** Operations the clients have a method for: the snippet shows that instead of a raw request. */
const CLIENT_CALLS: Record<string, { ts: string; py: string }> = {
	"POST /v1/uploads": {
		ts: 'const upload = await reelgate.upload("still.png"); // create, PUT the bytes, complete',
		py: 'upload = client.upload_file("still.png")  # create, PUT the bytes, complete',
	},
	"POST /v1/jobs": {
		ts: [
			'const job = await reelgate.createJob({ model: "preview", input: { image: "upl_…" } });',
			"// Or all in one call: upload, start, follow, and wait for the video:",
			'const done = await reelgate.run("preview", { image: "still.png" }, { onProgress: console.log });',
		].join("\n"),
		py: [
			'job = client.create_job({"model": "preview", "input": {"image": "upl_…"}})',
			"# Or all in one call: upload, start, follow, and wait for the video:",
			'done = client.run("preview", {"image": "still.png"}, on_progress=print)',
		].join("\n"),
	},
	"GET /v1/jobs": {
		ts: 'const { data } = await reelgate.listJobs({ status: "running", limit: 20 });',
		py: 'page = client.list_jobs(status="running", limit=20)',
	},
	"GET /v1/jobs/{id}": {
		ts: `const job = await reelgate.getJob("${JOB_ID}");`,
		py: `job = client.get_job("${JOB_ID}")`,
	},
	"POST /v1/jobs/{id}/cancel": {
		ts: `const job = await reelgate.cancelJob("${JOB_ID}");`,
		py: `job = client.cancel_job("${JOB_ID}")`,
	},
	"GET /v1/jobs/{id}/events": {
		ts: `const job = await reelgate.waitForJob("${JOB_ID}", { onEvent: (e) => console.log(e.type, e.job.progress) });`,
		py: `job = client.wait_for_job("${JOB_ID}", on_update=lambda j: print(j["status"], j["progress"]))`,
	},
	"GET /v1/jobs/{id}/video": {
		ts: `await reelgate.saveVideo("${JOB_ID}", "video.mp4");`,
		py: `client.download_video("${JOB_ID}", "video.mp4")`,
	},
};

const TS_HEADER = {
	apiKey:
		'import { Reelgate } from "./sdk/node.ts";\n\nconst reelgate = new Reelgate(); // REELGATE_URL, REELGATE_API_KEY',
	adminToken:
		'import { Reelgate } from "./sdk/node.ts";\n\nconst reelgate = new Reelgate({ apiKey: process.env.ADMIN_TOKEN });',
	none: 'import { Reelgate } from "./sdk/node.ts";\n\nconst reelgate = new Reelgate();',
};
const PY_HEADER = {
	apiKey: "import reelgate\n\nclient = reelgate.Client()  # REELGATE_URL, REELGATE_API_KEY",
	adminToken: 'import os\nimport reelgate\n\nclient = reelgate.Client(api_key=os.environ["ADMIN_TOKEN"])',
	none: "import reelgate\n\nclient = reelgate.Client()",
};

function authOf(op: Operation): keyof typeof TS_HEADER {
	const scheme = Object.keys(op.security?.[0] ?? {})[0];
	return scheme === "adminToken" ? "adminToken" : scheme === "apiKey" ? "apiKey" : "none";
}

function concretePath(path: string, op: Operation): string {
	return path.replace(/\{([^}]+)\}/g, (_, name: string) => {
		const param = op.parameters?.find((p) => "in" in p && p.in === "path" && p.name === name);
		const schema = param && "schema" in param ? param.schema : undefined;
		const example = schema && "example" in schema ? schema.example : undefined;
		return typeof example === "string" ? example : (PARAM_EXAMPLES[name] ?? name);
	});
}

/** Python literals for a JSON example (True/False/None, double-quoted strings). */
function pythonLiteral(value: unknown): string {
	return JSON.stringify(value, null, 4)
		.replace(/\btrue\b/g, "True")
		.replace(/\bfalse\b/g, "False")
		.replace(/\bnull\b/g, "None");
}

function codeSamples(method: string, path: string, op: Operation, example: unknown) {
	const key = `${method.toUpperCase()} ${path}`;
	const auth = authOf(op);
	const known = CLIENT_CALLS[key];
	const url = concretePath(path, op);
	const verb = method.toUpperCase();
	const ts =
		known?.ts ??
		(example === undefined
			? `const answer = await reelgate.request("${verb}", "${url}");`
			: `const answer = await reelgate.request("${verb}", "${url}", ${JSON.stringify(example, null, "\t")});`);
	const py =
		known?.py ??
		(example === undefined
			? `answer = client.request("${verb}", "${url}")`
			: `answer = client.request("${verb}", "${url}", ${pythonLiteral(example)})`);
	return [
		{ lang: "typescript", label: "TypeScript SDK", source: `${TS_HEADER[auth]}\n${ts}\n` },
		{ lang: "python", label: "Python client", source: `${PY_HEADER[auth]}\n${py}\n` },
	];
}

/** Adds the reference's tags, groups, examples and snippets to a generated document (in place) and returns it. */
export function describeForReference(doc: ApiDocument): ApiDocument {
	const used = new Set(Object.values(doc.paths ?? {}).flatMap((item) => METHODS.flatMap((m) => item[m]?.tags ?? [])));
	doc.info.description = INTRODUCTION;
	// Only tags with operations: an empty one would show as a section with nothing in it.
	doc.tags = TAGS.filter((t) => used.has(t.name));
	doc["x-tagGroups"] = TAG_GROUPS.map((g) => ({ ...g, tags: g.tags.filter((t) => used.has(t)) })).filter(
		(g) => g.tags.length > 0,
	);
	for (const [path, item] of Object.entries(doc.paths ?? {})) {
		for (const method of METHODS) {
			const op = item[method];
			if (!op) continue;
			const example = REQUEST_EXAMPLES[`${method.toUpperCase()} ${path}`];
			const body = op.requestBody && "content" in op.requestBody ? op.requestBody : undefined;
			const json = body?.content["application/json"];
			if (json && example !== undefined) json.example = example;
			op["x-codeSamples"] = codeSamples(method, path, op, json ? example : undefined);
		}
	}
	return doc;
}
