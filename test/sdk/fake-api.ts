// A scripted local HTTP server standing in for the API: each test says how each request is answered.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface Seen {
	method: string;
	path: string;
	headers: IncomingMessage["headers"];
	body: Buffer;
}

export type Handler = (req: Seen, res: ServerResponse, n: number) => void | Promise<void>;

export async function fakeApi(handler: Handler) {
	const seen: Seen[] = [];
	const server = createServer((req, res) => {
		const chunks: Buffer[] = [];
		req.on("data", (c: Buffer) => chunks.push(c));
		req.on("end", () => {
			const s: Seen = {
				method: req.method ?? "",
				path: req.url ?? "",
				headers: req.headers,
				body: Buffer.concat(chunks),
			};
			seen.push(s);
			void handler(s, res, seen.length);
		});
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as AddressInfo;
	return {
		url: `http://127.0.0.1:${port}`,
		seen,
		close: () => {
			server.closeAllConnections();
			return new Promise<void>((resolve) => server.close(() => resolve()));
		},
	};
}

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
	res.writeHead(status, {
		"content-type": status >= 400 ? "application/problem+json" : "application/json",
		...headers,
	});
	res.end(JSON.stringify(body));
}

export function problem(
	res: ServerResponse,
	status: number,
	code: string,
	detail: string,
	headers: Record<string, string> = {},
) {
	json(res, status, { type: `https://reelgate.dev/problems/${code}`, title: code, status, detail, code }, headers);
}

export function job(id: string, status: string, percent: number) {
	const self = `http://x/v1/jobs/${id}`;
	return {
		id,
		status,
		model: "preview",
		created_at: "2026-01-01T00:00:00Z",
		progress: { percent, stage: status },
		attempts: 1,
		links: { self, events: `${self}/events`, video: `${self}/video` },
	};
}
