// A request log in front of a backend emulator: a loopback HTTP proxy that forwards every call unchanged and records
// when it was made, its method and path, and for `POST …/run` the prompt sent and the remote job id answered. The
// benchmarks count a job's backend API calls from it and find the emulator's id for the job they created.
import http from "node:http";

/** Reads a whole stream into one Buffer. */
async function readAll(stream) {
	const chunks = [];
	for await (const chunk of stream) chunks.push(chunk);
	return Buffer.concat(chunks);
}

/** Proxies to `target` (an origin); resolves with `{ url, log, close }`, `log` growing as calls arrive. */
export async function startRecordingProxy(target) {
	const upstream = new URL(target);
	const log = [];
	const server = http.createServer(async (req, res) => {
		const body = await readAll(req);
		const entry = { at: performance.now(), method: req.method, path: req.url };
		log.push(entry);
		const forward = http.request(
			{ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
			async (answer) => {
				const answerBody = await readAll(answer);
				if (req.method === "POST" && /\/run$/.test(req.url ?? "")) {
					try {
						entry.prompt = JSON.parse(body.toString()).input?.params?.prompt;
						entry.remoteId = JSON.parse(answerBody.toString()).id;
					} catch {
						// A refused /run: nothing to record beyond the call.
					}
				}
				res.writeHead(answer.statusCode ?? 502, answer.headers);
				res.end(answerBody);
			},
		);
		forward.on("error", () => {
			res.writeHead(502);
			res.end();
		});
		forward.end(body);
	});
	await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
	return {
		url: `http://127.0.0.1:${server.address().port}`,
		log,
		close: () =>
			new Promise((resolve) => {
				server.closeAllConnections();
				server.close(() => resolve());
			}),
	};
}
