// vast.ai's REST API (https://console.vast.ai, bearer auth): templates (`POST/GET /api/v0/template/`), renting
// an offer with a template (`PUT /api/v0/asks/{offer_id}/`), showing and destroying an instance
// (`GET/DELETE /api/v0/instances/{id}/`). See vast-ai/docs api-reference.
import { jsonClient } from "./http-json.mjs";

export const VASTAI_BASE = "https://console.vast.ai";

/** Docker-style flags for a template's `env`: ports to expose and `-e KEY=VALUE` pairs. */
export function dockerFlags(env, ports = []) {
	const quote = (v) => (/^[A-Za-z0-9_.,:/@=+-]*$/.test(v) ? v : `'${String(v).replaceAll("'", "'\\''")}'`);
	return [
		...ports.map((p) => `-p ${p}:${p}`),
		...Object.entries(env).map(([k, v]) => `-e ${k}=${quote(String(v))}`),
	].join(" ");
}

/** @param {{ apiKey: string, base?: string, fetch?: typeof fetch }} options */
export function vastaiRest({ apiKey, base = VASTAI_BASE, fetch: fetchImpl }) {
	const http = jsonClient({ base, token: apiKey, name: "vast.ai", fetch: fetchImpl });
	return {
		/** Finds one of our templates by name (the newest when several). */
		async findTemplate(name) {
			const q = encodeURIComponent(JSON.stringify({ name: { eq: name } }));
			const res = await http.get(`/api/v0/template/?select_filters=${q}`);
			const list = Array.isArray(res?.templates) ? res.templates : [];
			return list.filter((t) => t?.name === name).sort((a, b) => (b.id ?? 0) - (a.id ?? 0))[0] ?? null;
		},
		/** Creates a template; vast.ai answers the existing one when an identical template exists. */
		async createTemplate(body) {
			const res = await http.post("/api/v0/template/", body);
			return res?.template ?? res;
		},
		/** Rents an offer with a template; answers the new instance id. */
		async createInstance(offerId, body) {
			const res = await http.put(`/api/v0/asks/${encodeURIComponent(offerId)}/`, body);
			if (!res?.new_contract) throw new Error(`vast.ai did not create an instance: ${JSON.stringify(res)}`);
			return res.new_contract;
		},
		async getInstance(instanceId) {
			const res = await http.get(`/api/v0/instances/${encodeURIComponent(instanceId)}/?owner=me`);
			return res?.instances ?? null;
		},
		destroyInstance: (instanceId) => http.delete(`/api/v0/instances/${encodeURIComponent(instanceId)}/`),
	};
}

/** The pod server's public URL on a running instance (`http://ip:hostPort`), or null while it has none. */
export function instanceUrl(instance, port = 8000) {
	const mapped = instance?.ports?.[`${port}/tcp`]?.[0]?.HostPort;
	return instance?.public_ipaddr && mapped ? `http://${instance.public_ipaddr}:${mapped}` : null;
}
