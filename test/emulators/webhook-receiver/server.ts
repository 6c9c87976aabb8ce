/**
 * TEST DOUBLE: a webhook receiver, run in Node by the vitest global setup on an ephemeral loopback port. Every
 * `POST /hooks/<name>` is recorded (headers and raw body) and answered with the next scripted response for that
 * path, or 200 when none is scripted. Tests use their own `<name>` so parallel files never share a script.
 *
 *   POST /_control/script?path=/hooks/x  `{ "responses": [{ "status": 500 }, { "status": 429, "retry_after": "7" }] }`
 *   GET  /_control/received?path=/hooks/x → `{ "requests": [{ "headers": {…}, "body": "…", "at": epoch ms }] }`
 */

interface NodeRequest {
	method?: string;
	url?: string;
	headers: Record<string, string | string[] | undefined>;
	on(event: "data", cb: (chunk: Uint8Array) => void): void;
	on(event: "end", cb: () => void): void;
}
interface NodeResponse {
	writeHead(status: number, headers?: Record<string, string>): void;
	end(body?: string): void;
}
interface NodeServer {
	listen(port: number, host: string, cb: () => void): void;
	address(): { port: number } | string | null;
	close(cb: () => void): void;
	closeAllConnections(): void;
}

export interface ScriptedResponse {
	status: number;
	retry_after?: string;
}

export interface ReceivedWebhook {
	headers: Record<string, string>;
	body: string;
	at: number;
}

export interface WebhookReceiver {
	url: string;
	close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
	const scripts = new Map<string, ScriptedResponse[]>();
	const received = new Map<string, ReceivedWebhook[]>();

	const readBody = (req: NodeRequest) =>
		new Promise<string>((resolve) => {
			const chunks: Uint8Array[] = [];
			req.on("data", (c) => chunks.push(c));
			req.on("end", () => {
				const all = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
				let at = 0;
				for (const c of chunks) {
					all.set(c, at);
					at += c.byteLength;
				}
				resolve(new TextDecoder().decode(all));
			});
		});

	const json = (res: NodeResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
		res.writeHead(status, { "content-type": "application/json", ...headers });
		res.end(JSON.stringify(body));
	};

	async function handle(req: NodeRequest, res: NodeResponse): Promise<void> {
		const url = new URL(req.url ?? "/", "http://receiver");
		const body = await readBody(req);
		const target = url.searchParams.get("path") ?? "";
		if (req.method === "POST" && url.pathname === "/_control/script") {
			const parsed = JSON.parse(body || "{}") as { responses?: ScriptedResponse[] };
			scripts.set(target, [...(scripts.get(target) ?? []), ...(parsed.responses ?? [])]);
			return json(res, 200, { ok: true });
		}
		if (req.method === "GET" && url.pathname === "/_control/received") {
			return json(res, 200, { requests: received.get(target) ?? [] });
		}
		if (req.method === "POST" && url.pathname.startsWith("/hooks/")) {
			const headers: Record<string, string> = {};
			for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
			const list = received.get(url.pathname) ?? [];
			list.push({ headers, body, at: Date.now() });
			received.set(url.pathname, list);
			const next = scripts.get(url.pathname)?.shift() ?? { status: 200 };
			return json(
				res,
				next.status,
				{ ok: next.status < 300 },
				next.retry_after ? { "retry-after": next.retry_after } : {},
			);
		}
		return json(res, 404, { error: "not found" });
	}

	// A computed specifier keeps tsc (workers types, no @types/node) from resolving the module (see the pod emulator).
	const httpModule = "node:http";
	const http = (await import(httpModule)) as {
		createServer(h: (req: NodeRequest, res: NodeResponse) => void): NodeServer;
	};
	const server = http.createServer((req, res) => {
		handle(req, res).catch((err: unknown) => json(res, 500, { error: String(err) }));
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const address = server.address();
	const port = typeof address === "object" && address ? address.port : 0;
	return {
		url: `http://127.0.0.1:${port}`,
		close: () =>
			new Promise<void>((resolve) => {
				server.closeAllConnections();
				server.close(() => resolve());
			}),
	};
}
