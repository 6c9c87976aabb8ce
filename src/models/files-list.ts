/**
 * The GPU worker's list of model files (gpu-worker/model-files.json: folder, name, size, sha256, source), made
 * from the shipped manifests' `files`, so the image's download script, its entrypoint check and its health check
 * read what the manifests say (`npm run models -- files` writes it; a unit test keeps it current). The first
 * manifest to name a file gives its entry.
 */
import type { ModelManifest } from "./manifest";

export interface WorkerModelFile {
	folder: string;
	name: string;
	size: number | null;
	sha256: string | null;
	source: string | null;
}

/** The models the image bundles come first, in the order its download script lists their files. */
const BUNDLED = ["wan2.2-i2v", "wan2.2-s2v"];
const rank = (id: string) => (BUNDLED.includes(id) ? BUNDLED.indexOf(id) : BUNDLED.length);

export function workerModelFiles(manifests: readonly ModelManifest[]): WorkerModelFile[] {
	const seen = new Map<string, WorkerModelFile>();
	const ordered = [...manifests].sort((a, b) => rank(a.id) - rank(b.id) || a.id.localeCompare(b.id));
	for (const m of ordered) {
		for (const f of m.files) {
			const key = `${f.folder}/${f.name}`;
			if (seen.has(key)) continue;
			seen.set(key, {
				folder: f.folder,
				name: f.name,
				size: f.size ?? null,
				sha256: f.sha256 ?? null,
				source: f.source ?? null,
			});
		}
	}
	return [...seen.values()];
}

/** model-files.json as written: one file per line, so a diff shows which file changed. */
export function workerModelFilesJson(manifests: readonly ModelManifest[]): string {
	const lines = workerModelFiles(manifests).map(
		(f) => `    ${JSON.stringify(f).replace(/":/g, '": ').replace(/,"/g, ', "')}`,
	);
	return `{\n  "files": [\n${lines.join(",\n")}\n  ]\n}\n`;
}
