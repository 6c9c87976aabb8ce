// The plain loopback file transfer the download benchmark compares against: a Node HTTP server that streams one
// file from disk, no workerd. It runs in its own process (`startFileServer`), so it does not share the client's
// event loop, as workerd does not.
import { spawn } from "node:child_process";
import { createReadStream, statSync } from "node:fs";
import http from "node:http";

/** Starts the server for `file` in a child process; resolves with `{ url, close }`. */
export function startFileServer(file) {
	const child = spawn(process.execPath, [import.meta.filename, file], { stdio: ["ignore", "pipe", "inherit"] });
	return new Promise((resolve, reject) => {
		child.once("error", reject);
		child.once("exit", (code) => reject(new Error(`file server exited with ${code}`)));
		child.stdout.once("data", (chunk) => {
			resolve({
				url: `http://127.0.0.1:${Number(String(chunk).trim())}`,
				close: () =>
					new Promise((done) => {
						child.removeAllListeners("exit");
						child.once("exit", () => done());
						child.kill();
					}),
			});
		});
	});
}

if (process.argv[1] === import.meta.filename) {
	const file = process.argv[2] ?? "";
	const size = statSync(file).size;
	const server = http.createServer((_req, res) => {
		res.writeHead(200, { "content-type": "video/mp4", "content-length": String(size) });
		// 1 MiB reads (the default is 64 KiB), so the baseline is not held back by the read size.
		createReadStream(file, { highWaterMark: 1024 * 1024 }).pipe(res);
	});
	server.listen(0, "127.0.0.1", () => process.stdout.write(`${server.address().port}\n`));
}
