// RunPod's REST API (https://rest.runpod.io/v1, bearer auth): templates, network volumes, serverless endpoints
// and pods, as documented in runpod/docs api-reference/openapi.json. Lookups are by name, so every deploy step
// can run again and update what exists instead of duplicating it.
import { jsonClient } from "./http-json.mjs";

export const RUNPOD_REST_BASE = "https://rest.runpod.io/v1";

/**
 * @param {{ apiKey: string, base?: string, fetch?: typeof fetch }} options
 */
export function runpodRest({ apiKey, base = RUNPOD_REST_BASE, fetch: fetchImpl }) {
	const http = jsonClient({ base, token: apiKey, name: "RunPod", fetch: fetchImpl });
	const byName = (list, name) => (Array.isArray(list) ? list.find((x) => x?.name === name) : undefined) ?? null;
	const id = (x) => encodeURIComponent(x);
	return {
		listTemplates: () => http.get("/templates"),
		findTemplate: async (name) => byName(await http.get("/templates"), name),
		createTemplate: (body) => http.post("/templates", body),
		updateTemplate: (templateId, body) => http.patch(`/templates/${id(templateId)}`, body),
		deleteTemplate: (templateId) => http.delete(`/templates/${id(templateId)}`),

		findVolume: async (name) => byName(await http.get("/networkvolumes"), name),
		createVolume: (body) => http.post("/networkvolumes", body),
		updateVolume: (volumeId, body) => http.patch(`/networkvolumes/${id(volumeId)}`, body),
		deleteVolume: (volumeId) => http.delete(`/networkvolumes/${id(volumeId)}`),

		findEndpoint: async (name) => byName(await http.get("/endpoints"), name),
		getEndpoint: (endpointId) => http.get(`/endpoints/${id(endpointId)}?includeWorkers=true`),
		createEndpoint: (body) => http.post("/endpoints", body),
		updateEndpoint: (endpointId, body) => http.patch(`/endpoints/${id(endpointId)}`, body),
		deleteEndpoint: (endpointId) => http.delete(`/endpoints/${id(endpointId)}`),

		findPod: async (name) => byName(await http.get(`/pods?name=${encodeURIComponent(name)}`), name),
		getPod: (podId) => http.get(`/pods/${id(podId)}`),
		createPod: (body) => http.post("/pods", body),
		updatePod: (podId, body) => http.patch(`/pods/${id(podId)}`, body),
		stopPod: (podId) => http.post(`/pods/${id(podId)}/stop`),
		startPod: (podId) => http.post(`/pods/${id(podId)}/start`),
		deletePod: (podId) => http.delete(`/pods/${id(podId)}`),
	};
}

/**
 * Upserts by name: creates when missing, else updates; answers the resource and what was done.
 * @template T
 * @param {{ find: () => Promise<any>, create: () => Promise<any>, update: (existing: any) => Promise<any> }} ops
 * @returns {Promise<{ resource: any, action: "created" | "updated" }>}
 */
export async function upsert(ops) {
	const existing = await ops.find();
	if (!existing) return { resource: await ops.create(), action: "created" };
	const updated = await ops.update(existing);
	return { resource: { ...existing, ...(updated ?? {}) }, action: "updated" };
}
