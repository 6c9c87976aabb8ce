// Shared by the ops tests: a recorder standing in for Reelgate's admin API, and a log collector.
import { createServer } from "node:http";

/** A fake Reelgate admin API: records PUT/DELETE /v1/admin/backends/{name}, answers GET /v1/admin/usage. */
export function startAdminRecorder({ token = "admin-test-token", usage = null } = {}) {
	const calls = [];
	const server = createServer(async (req, res) => {
		const chunks = [];
		for await (const c of req) chunks.push(c);
		const raw = Buffer.concat(chunks).toString("utf8");
		const url = new URL(req.url ?? "/", "http://x");
		calls.push({ method: req.method, path: url.pathname, query: url.search, body: raw ? JSON.parse(raw) : undefined });
		if (req.headers.authorization !== `Bearer ${token}`) {
			res.writeHead(401, { "content-type": "application/problem+json" });
			return res.end(JSON.stringify({ code: "unauthorized", detail: "Missing or invalid admin token." }));
		}
		if (url.pathname === "/v1/admin/usage" && usage) {
			res.writeHead(200, { "content-type": "application/json" });
			return res.end(JSON.stringify(usage));
		}
		if (/^\/v1\/admin\/backends\/[^/]+$/.test(url.pathname) && (req.method === "PUT" || req.method === "DELETE")) {
			res.writeHead(200, { "content-type": "application/json" });
			return res.end(JSON.stringify({ name: url.pathname.split("/").pop() }));
		}
		res.writeHead(404);
		res.end();
	});
	return new Promise((resolve) => {
		server.listen(0, "127.0.0.1", () => {
			const { port } = server.address();
			resolve({
				url: `http://127.0.0.1:${port}`,
				token,
				calls,
				close: () => new Promise((r) => server.close(() => r())),
			});
		});
	});
}

/** A log function and the lines it collected. */
export function collector() {
	const lines = [];
	return { lines, log: (l) => lines.push(l), text: () => lines.join("\n") };
}
