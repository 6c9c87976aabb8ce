// The SDK in Node: the same client, which also finds the API (REELGATE_URL, or the local stack that `npm start`
// recorded), takes its key from REELGATE_API_KEY, uploads files by path and saves videos to files.
//
//   import { Reelgate } from "./sdk/node.ts";
//   const job = await new Reelgate().run("preview", { image: "still.png" });
//   await job.download("video.mp4");
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, openAsBlob } from "node:fs";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { resolveApiUrl, unreachableMessage } from "../scripts/lib/local-stack.mjs";
import { Reelgate as PortableReelgate, type ReelgateOptions } from "./client.ts";
import { contentTypeOfName, type ResolvedFile } from "./files.ts";

export * from "./index.ts";

/** A missing API key, said with how to get one. */
export class MissingApiKeyError extends Error {
	constructor() {
		super("No API key: pass { apiKey } or set REELGATE_API_KEY (`npm run keys -- create --name me` makes one).");
		this.name = "MissingApiKeyError";
	}
}

export class Reelgate extends PortableReelgate {
	/**
	 * Options left out come from the environment: `baseUrl` from REELGATE_URL, else the running `npm start`
	 * (.reelgate/local.json), else http://127.0.0.1:8787; `apiKey` from REELGATE_API_KEY.
	 */
	constructor(options: Partial<ReelgateOptions> = {}) {
		const target = resolveApiUrl(options.baseUrl);
		const apiKey = options.apiKey ?? process.env.REELGATE_API_KEY;
		if (!apiKey) throw new MissingApiKeyError();
		super({
			...options,
			baseUrl: target.url,
			apiKey,
			describeUnreachable: options.describeUnreachable ?? ((err) => unreachableMessage(target, err)),
		});
	}

	/** Streams the finished video of job `id` to a file; resolves with the byte count. */
	async saveVideo(id: string, file: string): Promise<number> {
		return this.writePath(file, await this.downloadVideo(id));
	}

	/** The file as a Blob backed by the file (read as it is sent, never whole), with its name, type and SHA-256. */
	protected override async openPath(file: string): Promise<ResolvedFile> {
		const filename = path.basename(file);
		const contentType = contentTypeOfName(filename);
		if (!contentType) {
			throw new TypeError(`${file}: unknown file type; use one of .png .jpg .jpeg .webp .wav .mp3 .flac .ogg.`);
		}
		const data = await openAsBlob(file, { type: contentType });
		const hash = createHash("sha256");
		await pipeline(createReadStream(file), hash);
		return { data, filename, contentType, sha256: hash.digest("hex") };
	}

	protected override async writePath(file: string, body: ReadableStream<Uint8Array>): Promise<number> {
		let bytes = 0;
		const source = Readable.fromWeb(body as Parameters<typeof Readable.fromWeb>[0]);
		source.on("data", (chunk: Buffer) => {
			bytes += chunk.length;
		});
		await pipeline(source, createWriteStream(file));
		return bytes;
	}
}
