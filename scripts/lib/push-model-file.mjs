// `npm run models -- push FILE --folder unet`: a model file into the operator's R2 through Reelgate's admin API
// (POST /v1/admin/model-files, PUT …/parts/{n}, POST …/complete). Resumable: the upload id and the etag of each
// stored part are kept beside the file in FILE.reelgate-push.json, so a rerun after a failure sends only the
// parts still missing. The sha256 is computed first (the API records it; manifests pin it).
import { createHash } from "node:crypto";
import { createReadStream, existsSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import path from "node:path";

/** sha256 of a file, streamed. */
export async function fileSha256(file) {
	const hash = createHash("sha256");
	for await (const chunk of createReadStream(file)) hash.update(chunk);
	return hash.digest("hex");
}

async function readPart(file, offset, length) {
	const handle = await open(file, "r");
	try {
		const buf = Buffer.alloc(length);
		const { bytesRead } = await handle.read(buf, 0, length, offset);
		return buf.subarray(0, bytesRead);
	} finally {
		await handle.close();
	}
}

async function problemOf(res) {
	const text = await res.text();
	try {
		const p = JSON.parse(text);
		return p.detail ?? text;
	} catch {
		return text.slice(0, 300);
	}
}

/**
 * Pushes `file` to `models/{folder}/{name}`; returns `{ key, size, sha256, sent }` (`sent`: parts uploaded by
 * this run). `log` gets one line per step.
 */
export async function pushModelFile({ base, token, file, folder, name, partSize, fetchImpl = fetch, log = () => {} }) {
	const size = statSync(file).size;
	const statePath = `${file}.reelgate-push.json`;
	const api = (p, init = {}) =>
		fetchImpl(`${base.replace(/\/+$/, "")}${p}`, {
			...init,
			headers: { authorization: `Bearer ${token}`, ...(init.headers ?? {}) },
		});
	let state = existsSync(statePath) ? JSON.parse(readFileSync(statePath, "utf8")) : null;
	if (state && (state.size !== size || state.folder !== folder || state.name !== name)) state = null;
	let sha256 = state?.sha256;
	if (!sha256) {
		log(`hashing ${path.basename(file)} (${size} bytes)`);
		sha256 = await fileSha256(file);
	}
	if (!state) {
		const res = await api("/v1/admin/model-files", {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ folder, name, size, sha256, ...(partSize ? { part_size: partSize } : {}) }),
		});
		if (!res.ok) throw new Error(`starting the upload: HTTP ${res.status}: ${await problemOf(res)}`);
		const started = await res.json();
		if (started.state === "complete") {
			log(`${started.key} is stored already`);
			return { key: started.key, size, sha256, sent: 0 };
		}
		state = {
			folder,
			name,
			size,
			sha256,
			key: started.key,
			upload_id: started.upload_id,
			part_size: started.part_size,
			parts: {},
		};
		writeFileSync(statePath, JSON.stringify(state));
	} else {
		log(`resuming ${state.key}: ${Object.keys(state.parts).length} parts stored`);
	}
	const count = Math.max(1, Math.ceil(size / state.part_size));
	const query = `?key=${encodeURIComponent(state.key)}`;
	const uploadPath = `/v1/admin/model-files/${encodeURIComponent(state.upload_id)}`;
	let sent = 0;
	for (let n = 1; n <= count; n++) {
		if (state.parts[n]) continue;
		const bytes = await readPart(file, (n - 1) * state.part_size, state.part_size);
		const res = await api(`${uploadPath}/parts/${n}${query}`, {
			method: "PUT",
			headers: { "content-type": "application/octet-stream", "content-length": String(bytes.byteLength) },
			body: bytes,
		});
		if (!res.ok)
			throw new Error(`part ${n} of ${count}: HTTP ${res.status}: ${await problemOf(res)} (rerun to resume)`);
		state.parts[n] = (await res.json()).etag;
		writeFileSync(statePath, JSON.stringify(state));
		sent++;
		log(`part ${n}/${count} stored`);
	}
	const parts = Object.entries(state.parts).map(([n, etag]) => ({ part_number: Number(n), etag }));
	const res = await api(`${uploadPath}/complete${query}`, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify({ parts }),
	});
	if (!res.ok) throw new Error(`completing the upload: HTTP ${res.status}: ${await problemOf(res)}`);
	rmSync(statePath, { force: true });
	log(`${state.key} stored: ${size} bytes, sha256 ${sha256}`);
	return { key: state.key, size, sha256, sent };
}

/**
 * Mirrors a public file into R2: streams it to a temporary file beside `workDir` (14 GB never sits in memory),
 * checks it against `sha256` when given, then pushes it like a local file. The name defaults to the URL's last
 * path segment.
 */
export async function mirrorModelFile({ url, folder, name, sha256, workDir, fetchImpl = fetch, ...push }) {
	const target = name ?? decodeURIComponent(new URL(url).pathname.split("/").pop() ?? "");
	if (!target) throw new Error(`no file name in ${url}: give --name`);
	const file = path.join(workDir, target);
	const res = await fetchImpl(url, { redirect: "follow" });
	if (!res.ok || !res.body) throw new Error(`downloading ${url}: HTTP ${res.status}`);
	const hash = createHash("sha256");
	const { createWriteStream } = await import("node:fs");
	const { Readable, Transform } = await import("node:stream");
	const { pipeline } = await import("node:stream/promises");
	await pipeline(
		Readable.fromWeb(res.body),
		new Transform({
			transform(chunk, _enc, done) {
				hash.update(chunk);
				done(null, chunk);
			},
		}),
		createWriteStream(file),
	);
	const digest = hash.digest("hex");
	if (sha256 && digest !== sha256) {
		rmSync(file, { force: true });
		throw new Error(`${url} has sha256 ${digest}, not ${sha256}`);
	}
	try {
		return await pushModelFile({ ...push, file, folder, name: target, fetchImpl });
	} finally {
		// A failed push keeps its state file and the download, so a rerun resumes; a done one leaves nothing.
		if (!existsSync(`${file}.reelgate-push.json`)) rmSync(file, { force: true });
	}
}
