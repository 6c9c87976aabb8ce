/**
 * BENCH ONLY, never deployed: the real Worker (src/index.ts) with a few `/__bench/*` routes that give the benchmarks
 * their baselines in the same workerd process, so a ratio measures what the API adds and nothing else.
 *   GET  /__bench/hello                        a constant text answer: the floor of any request
 *   GET  /__bench/objects/{key}                 the R2 object straight from `env.BUCKET.get(key)`, nothing else
 *   GET  /__bench/video-key/{job}               the R2 key of the job's video (asked once, before the bare route)
 *   POST /__bench/migrate                       runs `{statements: [sql…]}` against D1 (ADMIN_TOKEN bearer): the
 *                                               migrations, for stacks whose D1 the benchmark cannot reach itself
 *   GET  /__bench/step/gate                     one step of the job read alone: the key's gate object admitting it
 *                                               (cached row, one charge; bearer)
 *   GET  /__bench/step/job/{id}                 … the job's Durable Object read
 *   GET  /__bench/step/key                      for comparison: the API-key lookup in D1 that every request made
 *                                               before the gate kept the row (now only a gate's cold read)
 * Every other request goes to the real Worker unchanged.
 */

import { hashApiKey } from "../../src/auth/api-keys";
import { findKeyWithLimits } from "../../src/db/accounts";
import worker from "../../src/index";
import { jobVideoKey } from "../../src/storage/index";

// The Durable Object classes (and whatever else the entry exports) must be exported by the bundle's entry.
export * from "../../src/index";

const OBJECT_PATH = "/__bench/objects/";
const VIDEO_KEY_PATH = "/__bench/video-key/";

/** The bare route: the R2 object's body as the response body, with its length, and no other work. */
async function bareObject(env: Env, key: string): Promise<Response> {
	const object = await env.BUCKET.get(key);
	if (!object) return new Response("no such object", { status: 404 });
	return new Response(object.body, {
		headers: { "content-type": "video/mp4", "content-length": String(object.size) },
	});
}

/** Applies migration statements in one D1 batch (D1 runs a batch as one transaction). */
async function migrate(request: Request, env: Env): Promise<Response> {
	if (request.headers.get("authorization") !== `Bearer ${env.ADMIN_TOKEN}`) {
		return new Response("unauthorized", { status: 401 });
	}
	const { statements } = (await request.json()) as { statements: string[] };
	if (statements.length > 0) await env.DB.batch(statements.map((sql) => env.DB.prepare(sql)));
	return Response.json({ applied: statements.length });
}

/** One storage step of `GET /v1/jobs/{id}` on its own, so the benchmark can say where the job read's time goes. */
async function step(request: Request, env: Env, name: string): Promise<Response> {
	const key = (request.headers.get("authorization") ?? "").replace(/^Bearer\s+/i, "");
	if (name === "key") {
		const row = await findKeyWithLimits(env.DB, await hashApiKey(key));
		return new Response(row ? "ok" : "no key", { status: row ? 200 : 404 });
	}
	if (name === "gate") {
		const hash = await hashApiKey(key);
		const admission = await env.RATE_LIMITER.getByName(hash).admit(hash, "jobs:read", ["requests"]);
		const ok = admission.status === "ok" && admission.decision?.allowed === true;
		return new Response(ok ? "ok" : admission.status, { status: ok ? 200 : 403 });
	}
	const job = await env.JOBS.getByName(name.replace(/^job\//, "")).get();
	return new Response(job ? "ok" : "no job", { status: job ? 200 : 404 });
}

export default {
	...worker,
	async fetch(request, env, ctx) {
		const { pathname } = new URL(request.url);
		if (pathname === "/__bench/hello") return new Response("hello");
		if (pathname.startsWith(OBJECT_PATH)) return bareObject(env, pathname.slice(OBJECT_PATH.length));
		if (pathname.startsWith(VIDEO_KEY_PATH)) {
			const job = await env.JOBS.getByName(pathname.slice(VIDEO_KEY_PATH.length)).get();
			return job ? new Response(jobVideoKey(job)) : new Response("no such job", { status: 404 });
		}
		if (pathname === "/__bench/migrate" && request.method === "POST") return migrate(request, env);
		if (pathname.startsWith("/__bench/step/")) return step(request, env, pathname.slice("/__bench/step/".length));
		return worker.fetch(request, env, ctx);
	},
} satisfies ExportedHandler<Env>;
