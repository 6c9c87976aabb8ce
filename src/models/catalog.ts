/**
 * The model catalog: which models exist now and the manifest of each. The manifests shipped in models/ are the
 * starting point; the admin API registers new models and new versions (D1 `model_versions`, every version kept)
 * and retires models (D1 `models`, the head of each model). A job resolves its model here once, at creation, and
 * keeps what it runs: retiring or replacing a model never changes a job already accepted.
 */
import { getModelVersion, listModelHeads, listModelVersions, putModelVersion, retireModel } from "../db/models";
import { canonicalJson } from "../lib/canonical-json";
import { sha256Hex } from "../lib/ids";
import { type ModelManifest, ModelManifestSchema } from "./manifest";
import { SHIPPED_MANIFESTS } from "./shipped";

/** Stored manifests parsed once per isolate, by digest (a version's content never changes). */
const parsedByDigest = new Map<string, ModelManifest>();

function parseStored(digest: string, json: string): ModelManifest {
	let manifest = parsedByDigest.get(digest);
	if (!manifest) {
		manifest = ModelManifestSchema.parse(JSON.parse(json));
		parsedByDigest.set(digest, manifest);
	}
	return manifest;
}

/** The digest of a manifest: sha256 of its canonical JSON, after validation (defaults filled in). */
export function manifestDigest(m: ModelManifest): Promise<string> {
	return sha256Hex(canonicalJson(m));
}

const shipped = (id: string) => SHIPPED_MANIFESTS.find((m) => m.id === id);

export interface CatalogEntry {
	manifest: ModelManifest;
	/** `shipped`: models/*.json as released; `registered`: a version put through the admin API. */
	source: "shipped" | "registered";
	/** When the model was retired (it is then out of `listModels`). */
	retired_at: string | null;
}

/** Every model the catalog knows, retired ones included, sorted by id. */
export async function catalogEntries(env: Env): Promise<CatalogEntry[]> {
	const heads = await listModelHeads(env.DB);
	const entries = new Map<string, CatalogEntry>();
	for (const m of SHIPPED_MANIFESTS) entries.set(m.id, { manifest: m, source: "shipped", retired_at: null });
	for (const head of heads) {
		const stored = head.manifest && head.digest ? parseStored(head.digest, head.manifest) : null;
		const manifest = stored ?? shipped(head.id);
		if (!manifest) continue;
		entries.set(head.id, { manifest, source: stored ? "registered" : "shipped", retired_at: head.retired_at });
	}
	return [...entries.values()].sort((a, b) => a.manifest.id.localeCompare(b.manifest.id));
}

/** Every model a job may name now, sorted by id. */
export async function listModels(env: Env): Promise<ModelManifest[]> {
	return (await catalogEntries(env)).filter((e) => e.retired_at === null).map((e) => e.manifest);
}

/** The current manifest of a model, or null when no such model exists (or it was retired). */
export async function findModel(env: Env, id: string): Promise<ModelManifest | null> {
	return (await listModels(env)).find((m) => m.id === id) ?? null;
}

export type RegisterResult =
	| { ok: true; created: boolean; manifest: ModelManifest }
	| { ok: false; reason: "version_conflict"; detail: string };

/**
 * Makes `manifest` the model's current version. A version is immutable: the same version again with the same
 * content re-activates it (a retired model comes back), with other content it is refused.
 */
export async function registerModel(env: Env, manifest: ModelManifest, now: string): Promise<RegisterResult> {
	const digest = await manifestDigest(manifest);
	const release = shipped(manifest.id);
	const conflict = (where: string): RegisterResult => ({
		ok: false,
		reason: "version_conflict",
		detail: `Version ${manifest.version} of ${manifest.id} ${where} with other content: give this manifest a new version.`,
	});
	if (release?.version === manifest.version && (await manifestDigest(release)) !== digest) {
		return conflict("ships with Reelgate");
	}
	const existing = await getModelVersion(env.DB, manifest.id, manifest.version);
	if (existing && existing.digest !== digest) return conflict("is already registered");
	const created = await putModelVersion(
		env.DB,
		{ id: manifest.id, version: manifest.version, manifest: JSON.stringify(manifest), digest, created_at: now },
		now,
	);
	return { ok: true, created, manifest };
}

/** Retires a model: new jobs can no longer name it. False when there is no such model (or it is retired already). */
export async function retire(env: Env, id: string, now: string): Promise<boolean> {
	const current = await findModel(env, id);
	if (!current) return false;
	await retireModel(env.DB, id, current.version, now);
	return true;
}

export interface ModelHistory {
	entry: CatalogEntry;
	versions: { version: string; digest: string; created_at: string | null; source: "shipped" | "registered" }[];
}

/** A model's entry and every version it has had: the shipped one, then the registered ones in order. */
export async function modelHistory(env: Env, id: string): Promise<ModelHistory | null> {
	const entry = (await catalogEntries(env)).find((e) => e.manifest.id === id);
	if (!entry) return null;
	const versions: ModelHistory["versions"] = [];
	const release = shipped(id);
	if (release)
		versions.push({
			version: release.version,
			digest: await manifestDigest(release),
			created_at: null,
			source: "shipped",
		});
	for (const v of await listModelVersions(env.DB, id)) {
		if (versions.some((x) => x.version === v.version)) continue;
		versions.push({ version: v.version, digest: v.digest, created_at: v.created_at, source: "registered" });
	}
	return { entry, versions };
}

/**
 * The manifest a job runs: the version it recorded at creation (shipped, or registered and kept since), or for a
 * job older than versioning the model's current one. Null when that version is gone (it never is: versions are
 * never deleted) or the model has no manifest at all.
 */
export async function manifestAt(env: Env, id: string, version: string | undefined): Promise<ModelManifest | null> {
	if (version === undefined) return (await catalogEntries(env)).find((e) => e.manifest.id === id)?.manifest ?? null;
	const release = shipped(id);
	if (release?.version === version) return release;
	const row = await getModelVersion(env.DB, id, version);
	return row ? parseStored(row.digest, row.manifest) : null;
}
