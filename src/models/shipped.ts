/**
 * The manifests that ship with Reelgate (models/*.json at the repository root): the catalog's starting point,
 * which the admin API can replace or retire per model (catalog.ts). Parsed once, when the module loads: a bad edit
 * fails every test that touches the catalog rather than the first job.
 */
import infinitetalk from "../../models/infinitetalk.json";
import preview from "../../models/preview.json";
import wanI2v from "../../models/wan2.2-i2v.json";
import wanI2vGguf from "../../models/wan2.2-i2v-gguf.json";
import wanS2v from "../../models/wan2.2-s2v.json";
import { type ModelManifest, ModelManifestSchema } from "./manifest";

export const SHIPPED_MANIFESTS: readonly ModelManifest[] = [infinitetalk, preview, wanI2v, wanI2vGguf, wanS2v].map(
	(raw) => ModelManifestSchema.parse(raw),
);
