/**
 * The plumbing every TypeScript test double shares: Node's `http`, typed to the slice used here (tsconfig.json checks
 * these files with the Workers types and declares no Node types; tsconfig.node.json checks them again with Node's), a
 * body reader, JSON replies, and a server on an ephemeral loopback port.
 */

export type Json = Record<string, unknown>;

export interface NodeRequest {
	method?: string;
	url?: string;
	headers: Record<string, string | string[] | undefined>;
	on(event: "data", cb: (chunk: Uint8Array) => void): void;
	on(event: "end" | "close", cb: () => void): void;
}

export interface NodeResponse {
	writeHead(status: number, headers?: Record<string, string>): void;
	write(chunk: Uint8Array): void;
	end(body?: string | Uint8Array): void;
}

interface NodeServer {
	listen(port: number, host: string, cb: () => void): void;
	address(): { port: number } | string | null;
	close(cb: () => void): void;
	closeAllConnections(): void;
}

/** The whole request body. */
export async function readBody(req: NodeRequest): Promise<Uint8Array> {
	const chunks: Uint8Array[] = [];
	await new Promise<void>((resolve) => {
		req.on("data", (c) => chunks.push(c));
		req.on("end", () => resolve());
	});
	const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
	let at = 0;
	for (const c of chunks) {
		out.set(c, at);
		at += c.byteLength;
	}
	return out;
}

/** A JSON reply. */
export function sendJson(res: NodeResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
	res.writeHead(status, { "content-type": "application/json", ...headers });
	res.end(JSON.stringify(body));
}

export interface LoopbackServer {
	port: number;
	close(): Promise<void>;
}

/**
 * Serves `handle` on 127.0.0.1 (`port` 0: a free one). A handler that throws answers 500 with the error. `close`
 * drops open connections first: requests held open by timeout faults would keep the server alive.
 */
export async function serveOnLoopback(
	handle: (req: NodeRequest, res: NodeResponse) => Promise<void>,
	port = 0,
): Promise<LoopbackServer> {
	// A computed specifier keeps tsc under tsconfig.json (Workers types, no Node types declared) from resolving the
	// module; vitest runs these files in Node, where it exists.
	const httpModule = "node:http";
	const http = (await import(httpModule)) as {
		createServer(h: (req: NodeRequest, res: NodeResponse) => void): NodeServer;
	};
	const server = http.createServer((req, res) => {
		handle(req, res).catch((err: unknown) => sendJson(res, 500, { error: String(err) }));
	});
	await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
	const address = server.address();
	return {
		port: typeof address === "object" && address ? address.port : 0,
		close: () =>
			new Promise<void>((resolve) => {
				server.closeAllConnections();
				server.close(() => resolve());
			}),
	};
}
