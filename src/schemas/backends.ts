/** The kinds of GPU backend the admin API accepts (docs/backends.md); a job's `backend.kind` is one of them. */
export const BACKEND_KINDS = ["runpod", "pod", "comfyui", "vastai"] as const;
export type BackendKind = (typeof BACKEND_KINDS)[number];
