// An emulator of the Cloudflare API v4 routes `npm run deploy` calls itself (wrangler's own calls are replaced by
// a recording runner in the tests): R2 buckets and CORS, D1 databases, Worker secret names. Shapes follow the
// Cloudflare API reference: every answer is `{ success, errors, messages, result }`; a bad token is 403 with
// error code 10000 ("Authentication error").
//   GET/POST  /accounts/{account_id}/r2/buckets                 → result.buckets[] / the bucket
//   GET/PUT   /accounts/{account_id}/r2/buckets/{name}/cors     → result.rules[] (404 code 10059 when none set)
//   GET/POST  /accounts/{account_id}/d1/database[?name=]        → result[] / { uuid, name }
//   GET       /accounts/{account_id}/workers/scripts/{name}/secrets → result[{ name, type }]
//   POST      /accounts/{account_id}/d1/database/{uuid}/query    → result[{ results, success, meta }]
// The last one is what `wrangler d1 migrations apply --remote` calls (body `{ sql, params? }`): each database is
// an in-memory SQLite (node:sqlite), so the real wrangler applies the real migrations against it.
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import { DatabaseSync } from "node:sqlite";

/**
 * @param {{ token?: string, accountId?: string }} [options]
 */
export function startCloudflareApi({ token = "cf-test-token", accountId = "acc0123" } = {}) {
	const state = { buckets: new Map(), cors: new Map(), databases: new Map(), secrets: new Map() };
	const requests = [];
	const ok = (res, result, status = 200) => {
		res.writeHead(status, { "content-type": "application/json" });
		res.end(JSON.stringify({ success: true, errors: [], messages: [], result }));
	};
	const fail = (res, status, code, message) => {
		res.writeHead(status, { "content-type": "application/json" });
		res.end(JSON.stringify({ success: false, errors: [{ code, message }], messages: [], result: null }));
	};
	const server = createServer(async (req, res) => {
		const chunks = [];
		for await (const c of req) chunks.push(c);
		const raw = Buffer.concat(chunks).toString("utf8");
		const url = new URL(req.url ?? "/", "http://x");
		const body = raw ? JSON.parse(raw) : undefined;
		requests.push({ method: req.method, path: url.pathname, body });
		if (req.headers.authorization !== `Bearer ${token}`) return fail(res, 403, 10000, "Authentication error");
		const m = /^\/client\/v4\/accounts\/([^/]+)\/(.*)$/.exec(url.pathname);
		if (!m || m[1] !== accountId) return fail(res, 404, 7003, "Could not route to the account");
		const rest = m[2];
		const corsMatch = /^r2\/buckets\/([^/]+)\/cors$/.exec(rest);
		const queryMatch = /^d1\/database\/([^/]+)\/query$/.exec(rest);
		const secretsMatch = /^workers\/scripts\/([^/]+)\/secrets$/.exec(rest);
		if (rest === "r2/buckets") {
			if (req.method === "GET") return ok(res, { buckets: [...state.buckets.values()] });
			if (req.method === "POST") {
				if (!body?.name) return fail(res, 400, 10005, "name is required");
				if (state.buckets.has(body.name)) return fail(res, 409, 10004, "The bucket you tried to create already exists");
				const b = { name: body.name, creation_date: new Date().toISOString(), location: "WEUR" };
				state.buckets.set(b.name, b);
				return ok(res, b);
			}
		} else if (corsMatch) {
			const name = decodeURIComponent(corsMatch[1]);
			if (!state.buckets.has(name)) return fail(res, 404, 10006, "The specified bucket does not exist");
			if (req.method === "GET") {
				if (!state.cors.has(name)) return fail(res, 404, 10059, "The CORS configuration does not exist");
				return ok(res, { rules: state.cors.get(name) });
			}
			if (req.method === "PUT") {
				if (!Array.isArray(body?.rules)) return fail(res, 400, 10040, "rules must be an array");
				state.cors.set(name, body.rules);
				return ok(res, {});
			}
		} else if (rest === "d1/database") {
			if (req.method === "GET") {
				const name = url.searchParams.get("name");
				return ok(
					res,
					[...state.databases.values()].filter((d) => !name || d.name === name),
				);
			}
			if (req.method === "POST") {
				if (!body?.name) return fail(res, 400, 7400, "name is required");
				if ([...state.databases.values()].some((d) => d.name === body.name))
					return fail(res, 400, 7502, "A database with that name already exists");
				const d = { uuid: randomUUID(), name: body.name, created_at: new Date().toISOString(), version: "production" };
				state.databases.set(d.uuid, d);
				return ok(res, d);
			}
		} else if (queryMatch && req.method === "POST") {
			const d = state.databases.get(queryMatch[1]);
			if (!d) return fail(res, 404, 7404, "The database could not be found");
			d.sqlite ??= new DatabaseSync(":memory:");
			const sql = String(body?.sql ?? "");
			try {
				// A single read answers rows; anything else (a migration file: several statements) is executed.
				const reads = /^\s*(SELECT|PRAGMA|WITH)\b/i.test(sql) && !/;\s*\S/.test(sql.trim().replace(/;\s*$/, ""));
				let results = [];
				if (reads) results = d.sqlite.prepare(sql).all(...(body?.params ?? []));
				else d.sqlite.exec(sql);
				return ok(res, [{ results, success: true, meta: { changes: 0, duration: 0, rows_read: results.length } }]);
			} catch (err) {
				return fail(res, 400, 7500, `${err.message}: SQLITE_ERROR`);
			}
		} else if (secretsMatch) {
			const script = decodeURIComponent(secretsMatch[1]);
			if (req.method === "GET") {
				if (!state.secrets.has(script)) return fail(res, 404, 10007, "This Worker does not exist on your account.");
				return ok(
					res,
					[...state.secrets.get(script)].map((name) => ({ name, type: "secret_text" })),
				);
			}
		}
		return fail(res, 404, 7000, "No route for that URI");
	});
	return new Promise((resolve) => {
		server.listen(0, "127.0.0.1", () => {
			const { port } = /** @type {import("node:net").AddressInfo} */ (server.address());
			resolve({
				url: `http://127.0.0.1:${port}/client/v4`,
				token,
				accountId,
				state,
				requests,
				close: () => new Promise((done) => server.close(() => done())),
			});
		});
	});
}
