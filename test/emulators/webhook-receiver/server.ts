/**
 * TEST DOUBLE: a webhook receiver, run in Node by the vitest global setup on an ephemeral loopback port. Every
 * `POST /hooks/<name>` is recorded (headers and raw body) and answered with the next scripted response for that
 * path, or 200 when none is scripted. Tests use their own `<name>` so parallel files never share a script.
 *
 *   POST /_control/script?path=/hooks/x  `{ "responses": [{ "status": 500 }, { "status": 429, "retry_after": "7" }] }`
 *   GET  /_control/received?path=/hooks/x → `{ "requests": [{ "headers": {…}, "body": "…", "at": epoch ms }] }`
 */
import { type NodeRequest, type NodeResponse, readBody, sendJson, serveOnLoopback } from "../loopback-http";

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

	const json = sendJson;

	async function handle(req: NodeRequest, res: NodeResponse): Promise<void> {
		const url = new URL(req.url ?? "/", "http://receiver");
		const body = new TextDecoder().decode(await readBody(req));
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

	const server = await serveOnLoopback(handle);
	const port = server.port;
	return {
		url: `http://127.0.0.1:${port}`,
		close: () => server.close(),
	};
}
