/**
 * A small client of vast.ai's REST API (https://docs.vast.ai/api-reference/introduction): search offers, create,
 * show, list and destroy instances. Bearer auth; every call has a timeout; failures come back as values, never thrown.
 */
import { parseRetryAfter } from "../lib/retry-after";
import { isObject } from "./http";

export const VASTAI_BASE_URL = "https://console.vast.ai";
const TIMEOUT_MS = 15_000;

export interface VastOffer {
	id: number;
	gpu_name?: string;
	gpu_ram?: number;
	dph_total?: number;
	reliability?: number;
}

export interface VastInstance {
	id: number;
	label?: string;
	actual_status: string | null;
	public_ipaddr?: string;
	ports?: Record<string, { HostIp?: string; HostPort: string }[]>;
	dph_total?: number;
}

/**
 * A failed call: the HTTP status (0: no answer), a message that keeps vast.ai's own words (its `msg` or `error`),
 * and its `Retry-After`, when it gave one.
 */
export type VastResult<T> =
	| { ok: true; value: T }
	| { ok: false; status: number; message: string; retryAfterMs?: number };

/** vast.ai's own explanation in an error answer (`{"success": false, "error": "…", "msg": "…"}`), kept short. */
function errorText(json: unknown): string | null {
	if (!isObject(json)) return null;
	const parts = [json.msg, json.error].filter((v): v is string => typeof v === "string" && v.length > 0);
	const text = parts[0] ?? null;
	return text ? text.replace(/\s+/g, " ").slice(0, 200) : null;
}

/** Statuses from which an instance never becomes `running` (destroy it and try another offer). */
export const DEAD_STATUSES = ["exited", "unknown", "offline"];

export class VastaiClient {
	readonly #base: string;
	readonly #key: string;

	constructor(apiKey: string, baseUrl = VASTAI_BASE_URL) {
		this.#base = baseUrl.replace(/\/+$/, "");
		this.#key = apiKey;
	}

	async #call(method: string, path: string, body?: unknown): Promise<VastResult<unknown>> {
		try {
			const res = await fetch(`${this.#base}${path}`, {
				method,
				headers: {
					authorization: `Bearer ${this.#key}`,
					accept: "application/json",
					...(body === undefined ? {} : { "content-type": "application/json" }),
				},
				body: body === undefined ? undefined : JSON.stringify(body),
				signal: AbortSignal.timeout(TIMEOUT_MS),
			});
			const json: unknown = await res.json().catch(() => undefined);
			if (!res.ok) {
				const said = errorText(json);
				const retryAfterMs = parseRetryAfter(res.headers.get("retry-after"));
				return {
					ok: false,
					status: res.status,
					message: `vast.ai answered HTTP ${res.status}${said ? `: ${said}` : ""}`,
					...(retryAfterMs === undefined ? {} : { retryAfterMs }),
				};
			}
			return { ok: true, value: json };
		} catch (err) {
			return {
				ok: false,
				status: 0,
				message: `vast.ai could not be reached (${err instanceof Error ? err.name : "error"})`,
			};
		}
	}

	/** `POST /api/v0/bundles/`: offers matching the filter, cheapest first. */
	async searchOffers(filter: Record<string, unknown>): Promise<VastResult<VastOffer[]>> {
		const r = await this.#call("POST", "/api/v0/bundles/", filter);
		if (!r.ok) return r;
		const offers = isObject(r.value) && Array.isArray(r.value.offers) ? (r.value.offers as VastOffer[]) : [];
		return { ok: true, value: offers.sort((a, b) => (a.dph_total ?? 0) - (b.dph_total ?? 0)) };
	}

	/** `PUT /api/v0/asks/{offer}/`: rents the offer; the new instance id is `new_contract`. */
	async createInstance(offerId: number, body: Record<string, unknown>): Promise<VastResult<number>> {
		const r = await this.#call("PUT", `/api/v0/asks/${offerId}/`, body);
		if (!r.ok) return r;
		const id = isObject(r.value) ? r.value.new_contract : undefined;
		return typeof id === "number" ? { ok: true, value: id } : { ok: false, status: 200, message: "no new_contract" };
	}

	/** `GET /api/v0/instances/{id}/?owner=me`; null when the instance is gone. */
	async showInstance(id: number): Promise<VastResult<VastInstance | null>> {
		const r = await this.#call("GET", `/api/v0/instances/${id}/?owner=me`);
		if (!r.ok) return r.status === 404 ? { ok: true, value: null } : r;
		const inst = isObject(r.value) ? r.value.instances : undefined;
		return { ok: true, value: isObject(inst) ? (inst as unknown as VastInstance) : null };
	}

	/** `GET /api/v1/instances/` (every page): all of the account's instances. */
	async listInstances(): Promise<VastResult<VastInstance[]>> {
		const out: VastInstance[] = [];
		let token: string | undefined;
		for (let page = 0; page < 50; page++) {
			const q = new URLSearchParams({ limit: "100" });
			if (token) q.set("next_token", token);
			const r = await this.#call("GET", `/api/v1/instances/?${q}`);
			if (!r.ok) return r;
			const v = isObject(r.value) ? r.value : {};
			if (Array.isArray(v.instances)) out.push(...(v.instances as VastInstance[]));
			token = typeof v.next_token === "string" && v.next_token ? v.next_token : undefined;
			if (!token) break;
		}
		return { ok: true, value: out };
	}

	/** `DELETE /api/v0/instances/{id}/`; an instance already gone counts as destroyed. */
	async destroyInstance(id: number): Promise<VastResult<true>> {
		const r = await this.#call("DELETE", `/api/v0/instances/${id}/`);
		if (!r.ok && r.status !== 404) return r;
		return { ok: true, value: true };
	}
}

/** ComfyUI's address on a running instance: the host port mapped to 8188 (Caddy, in front of ComfyUI). */
export function comfyUrl(inst: VastInstance): string | null {
	const port = inst.ports?.["8188/tcp"]?.[0]?.HostPort;
	return inst.public_ipaddr && port ? `http://${inst.public_ipaddr}:${port}` : null;
}
