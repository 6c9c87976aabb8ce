/**
 * The model files on a vast.ai instance: the onstart script that fetches and verifies them (no repository clone:
 * everything it needs is in the script), and the readiness check that they are all there, through ComfyUI's own
 * `GET /models/{folder}` (https://github.com/Comfy-Org/ComfyUI/blob/master/server.py), which lists the files
 * ComfyUI can load from a model folder.
 */
import { listModels } from "../models/catalog";
import type { ModelFile } from "../models/manifest";
import { r2SignerFor } from "../storage";

/** One file as the instance fetches it: where to, from where, and what it must be. */
export interface FileFetch {
	folder: string;
	name: string;
	url: string;
	size?: number;
	sha256?: string;
}

/** The vastai/comfyui image's workspace: ComfyUI's models under it, our fetch script and its log beside. */
const WORKSPACE = "/workspace";

/** The weight files the backend's models need (every ComfyUI model when it names none), each once. */
export async function modelFilesFor(env: Env, models: string[]): Promise<ModelFile[]> {
	const all = await listModels(env);
	const served = models.length > 0 ? all.filter((m) => models.includes(m.id)) : all;
	const byPath = new Map<string, ModelFile>();
	for (const m of served) for (const f of m.files) byPath.set(`${f.folder}/${f.name}`, f);
	return [...byPath.values()];
}

/**
 * Where each file comes from: a signed GET of the operator's R2 copy (`r2_key`) when R2 presigning is configured,
 * valid for `expiresInS` (the boot's whole allowance), else the public `source`. A file with neither is left out
 * (and readiness then waits for it in vain until the boot timeout: the manifest check refuses such files).
 */
export async function fetchPlan(env: Env, files: ModelFile[], expiresInS: number): Promise<FileFetch[]> {
	const signer = r2SignerFor(env);
	const plan: FileFetch[] = [];
	for (const f of files) {
		let url = f.source;
		if (f.r2_key && signer) url = (await signer.signGet(f.r2_key, { expiresInS })).url;
		if (!url) continue;
		plan.push({ folder: f.folder, name: f.name, url, size: f.size, sha256: f.sha256 });
	}
	return plan;
}

/** A shell word: single-quoted, any `'` closed, escaped and reopened. */
const word = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * The fetch script, run in the background at start. Each file goes to `<name>.part` (resumed across retries), is
 * checked (its pinned size and sha256 when the manifest has them, a safetensors header) and only then renamed into
 * place, so ComfyUI never lists a file that is incomplete or wrong. `HF_TOKEN`, when the instance has one, is sent
 * to huggingface.co only.
 */
export function onstartScript(plan: FileFetch[], workspace = WORKSPACE): string {
	const gets = plan.map(
		(f) => `get ${word(f.folder)} ${word(f.name)} ${word(f.url)} ${f.size ?? "-"} ${f.sha256 ?? "-"} || failed=1`,
	);
	const script = [
		`M=${workspace}/ComfyUI/models`,
		"failed=0",
		"dl() {",
		'  case "$1" in https://huggingface.co/*)',
		'    [ -n "$HF_TOKEN" ] && { curl -fsSL --retry 3 -C - -H "Authorization: Bearer $HF_TOKEN" -o "$2" "$1"; return; };;',
		"  esac",
		'  curl -fsSL --retry 3 -C - -o "$2" "$1"',
		"}",
		"get() {",
		'  f="$M/$1/$2"; [ -f "$f" ] && return 0',
		'  mkdir -p "$(dirname "$f")"',
		'  for try in 1 2 3 4 5; do dl "$3" "$f.part" && break; sleep 10; done',
		'  [ "$4" = - ] || [ "$(stat -c %s "$f.part" 2>/dev/null)" = "$4" ] || { echo "size differs: $2"; rm -f "$f.part"; return 1; }',
		'  [ "$5" = - ] || echo "$5  $f.part" | sha256sum -c --status || { echo "sha256 differs: $2"; rm -f "$f.part"; return 1; }',
		'  case "$2" in *.safetensors) [ "$(head -c 9 "$f.part" | tail -c 1)" = "{" ] || { echo "not safetensors: $2"; rm -f "$f.part"; return 1; };; esac',
		'  mv "$f.part" "$f" && echo "ready: $2"',
		"}",
		...gets,
		'echo "done: failed=$failed"',
		'exit "$failed"',
	].join("\n");
	const dir = `${workspace}/reelgate`;
	return [
		`mkdir -p ${dir}`,
		`cat > ${dir}/fetch-models.sh <<'REELGATE_SCRIPT'`,
		script,
		"REELGATE_SCRIPT",
		`nohup bash ${dir}/fetch-models.sh > ${dir}/fetch-models.log 2>&1 &`,
		"",
	].join("\n");
}

/**
 * The files ComfyUI on the instance does not list yet (`folder/name`); null when it could not be asked. Every file
 * listed was verified before it was renamed into place by the onstart script.
 */
export async function missingFiles(
	url: string,
	password: string,
	files: { folder: string; name: string }[],
): Promise<string[] | null> {
	const folders = [...new Set(files.map((f) => f.folder))];
	const listed = new Map<string, Set<string>>();
	for (const folder of folders) {
		try {
			const res = await fetch(`${url}/models/${encodeURIComponent(folder)}`, {
				headers: { authorization: `Bearer ${password}` },
				signal: AbortSignal.timeout(5000),
			});
			if (!res.ok) {
				await res.body?.cancel();
				// A folder ComfyUI does not know (404) holds none of them.
				if (res.status === 404) listed.set(folder, new Set());
				else return null;
				continue;
			}
			const names: unknown = await res.json();
			listed.set(folder, new Set(Array.isArray(names) ? names.filter((n) => typeof n === "string") : []));
		} catch {
			return null;
		}
	}
	return files.filter((f) => !listed.get(f.folder)?.has(f.name)).map((f) => `${f.folder}/${f.name}`);
}
