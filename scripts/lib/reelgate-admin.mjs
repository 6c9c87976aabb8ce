// Registering a GPU backend with a running Reelgate through its admin API (`PUT /v1/admin/backends/{name}`).
import { jsonClient } from "./http-json.mjs";

/**
 * The admin client when REELGATE_URL and ADMIN_TOKEN are set, else null (the deploy then says how to register).
 * @param {NodeJS.ProcessEnv} env
 */
export function reelgateAdmin(env, fetchImpl) {
	if (!env.REELGATE_URL || !env.ADMIN_TOKEN) return null;
	const http = jsonClient({ base: env.REELGATE_URL, token: env.ADMIN_TOKEN, name: "Reelgate", fetch: fetchImpl });
	return {
		/** @param {string} name @param {Record<string, unknown>} body */
		/** @param {string} query a URLSearchParams string (from, to, account) */
		getUsage: (query) => http.get(`/v1/admin/usage${query ? `?${query}` : ""}`),
		putBackend: (name, body) => http.put(`/v1/admin/backends/${encodeURIComponent(name)}`, body),
		deleteBackend: async (name) => {
			try {
				await http.delete(`/v1/admin/backends/${encodeURIComponent(name)}`);
				return true;
			} catch (err) {
				if (err.status === 404) return false;
				throw err;
			}
		},
	};
}
