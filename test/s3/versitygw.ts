/**
 * Starts versitygw (a real S3-compatible server that verifies SigV4, presigned URLs included) on a loopback
 * port over a temp directory, for the Node-side signer tests. The binary is found on PATH, in $GOBIN or
 * ~/go/bin; when missing it is built with `go install` at the pinned version (about 3 minutes, once).
 * Without Go: a skip with the reason outside CI, a failure under CI=true.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { homedir, tmpdir } from "node:os";
import path from "node:path";

export const VERSITYGW_MODULE = "github.com/versity/versitygw/cmd/versitygw";
export const VERSITYGW_VERSION = "v1.8.0";

export interface S3Server {
	endpoint: string;
	accessKeyId: string;
	secretAccessKey: string;
	region: string;
	close(): Promise<void>;
}

function which(name: string): string | null {
	try {
		return execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim() || null;
	} catch {
		return null;
	}
}

/** The versitygw binary, building it when Go is available; null (with why) when it cannot be had. */
export function findVersitygw(): { bin: string } | { bin: null; why: string } {
	const goBin = process.env.GOBIN || path.join(process.env.GOPATH || path.join(homedir(), "go"), "bin");
	const candidates = [process.env.VERSITYGW, path.join(goBin, "versitygw"), which("versitygw")];
	for (const c of candidates) if (c && existsSync(c)) return { bin: c };
	const go = which("go") ?? (existsSync("/usr/local/go/bin/go") ? "/usr/local/go/bin/go" : null);
	if (!go) return { bin: null, why: "versitygw is not installed and Go is not available to build it" };
	mkdirSync(goBin, { recursive: true });
	console.log(`Building versitygw ${VERSITYGW_VERSION} with go install (a few minutes, once)…`);
	execFileSync(go, ["install", `${VERSITYGW_MODULE}@${VERSITYGW_VERSION}`], {
		stdio: "inherit",
		env: { ...process.env, GOBIN: goBin },
	});
	const built = path.join(goBin, "versitygw");
	return existsSync(built) ? { bin: built } : { bin: null, why: `go install did not produce ${built}` };
}

async function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.listen(0, "127.0.0.1", () => {
			const address = server.address();
			server.close(() =>
				typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
			);
		});
	});
}

/** Starts versitygw with a fresh root directory; resolves once it answers HTTP. */
export async function startVersitygw(bin: string): Promise<S3Server> {
	const root = mkdtempSync(path.join(tmpdir(), "reelgate-s3-"));
	const port = await freePort();
	const server: S3Server = {
		endpoint: `http://127.0.0.1:${port}`,
		accessKeyId: "reelgate-test-ak",
		secretAccessKey: "reelgate-test-secret-0123456789",
		region: "auto",
		close: async () => undefined,
	};
	const child: ChildProcess = spawn(
		bin,
		[
			"--port",
			`127.0.0.1:${port}`,
			"--access",
			server.accessKeyId,
			"--secret",
			server.secretAccessKey,
			"--region",
			server.region,
			"posix",
			root,
		],
		{ stdio: ["ignore", "pipe", "pipe"] },
	);
	let log = "";
	child.stdout?.on("data", (c: unknown) => {
		log += String(c);
	});
	child.stderr?.on("data", (c: unknown) => {
		log += String(c);
	});
	for (let i = 0; i < 100; i++) {
		if (child.exitCode !== null) throw new Error(`versitygw exited ${child.exitCode}: ${log}`);
		try {
			await fetch(server.endpoint);
			break;
		} catch {
			await new Promise((r) => setTimeout(r, 100));
		}
	}
	server.close = async () => {
		child.kill("SIGTERM");
		await new Promise((r) => (child.exitCode !== null ? r(null) : child.once("exit", r)));
		rmSync(root, { recursive: true, force: true });
	};
	return server;
}
