/**
 * TEST DOUBLE: an emulator of vast.ai's REST API (https://docs.vast.ai/api-reference/introduction), run in Node
 * by the vitest global setup. Bearer auth (401 otherwise). Routes: `POST /api/v0/bundles/` (offers filtered by the
 * `gte`/`lte`/`eq`/`in` operators on gpu_ram, reliability, dph_total, num_gpus, verified, rentable, gpu_name),
 * `PUT /api/v0/asks/{offer}/` → {success, new_contract}, `GET /api/v0/instances/{id}/` → {instances: {…} | null},
 * `GET /api/v1/instances/` → {instances, next_token}, `DELETE /api/v0/instances/{id}/`.
 *
 * An instance boots over `show` calls: actual_status null → loading → running, with `ports["8188/tcp"]` mapped to
 * the ComfyUI emulator (whose Bearer token list gets the instance's env WEB_PASSWORD, as the template's Caddy does).
 * An `onstart` containing `#die` makes it `exited` instead; one containing `#models-late` makes its ComfyUI list
 * empty model folders for the first two listings, as while the onstart still fetches the weights. Control (no auth): `GET /_control/instances` (all, with the
 * create bodies, destroyed ones included), `POST /_control/instances` {label} adds an instance as if created
 * elsewhere (an orphan), `GET /_control/searches` (the search bodies received).
 *
 * Faults, per scope: an API key `<key>.<scope>` is accepted too, and `PUT /_control/scopes/<scope>` sets that
 * scope's faults, so test files sharing the emulator do not see each other's: `single_use_offers` (an offer rented
 * once answers 400 "no_such_ask" to every later create and leaves the search, as on vast.ai), `no_offers` (every
 * search finds none), `refuse_key` (401 to everything), `destroy_status` (DELETE answers it, with `Retry-After:
 * destroy_retry_after_s` when set, and destroys nothing), `create_429` (that many creates answer 429 with `Retry-After:
 * create_retry_after_s`), `first_dies_after_ms` (the scope's first instance turns
 * `exited`, its port closed, N ms after it was first shown running: alive through its boot, then lost). A destroyed instance's offer can be rented again.
 * `POST /_control/instances/<id>/kill` makes an instance `exited`, as a host failure would. Each instance has its own
 * port in front of the ComfyUI emulator (its `8188/tcp`), closed when it dies or is destroyed: a client still using
 * the address meets a refused connection, as with a real dead host.
 */
import {
	type Json,
	type LoopbackServer,
	type NodeRequest,
	type NodeResponse,
	readBody,
	sendJson,
	serveOnLoopback,
} from "../loopback-http";

/**
 * An instance's own port in front of the shared ComfyUI emulator, as vast.ai maps each instance's 8188: closed
 * when the instance dies or is destroyed, so a client still using its address meets a refused connection.
 */
async function instancePort(comfyPort: number): Promise<LoopbackServer> {
	return serveOnLoopback(async (req, res) => {
		const body = await readBody(req);
		const headers: Record<string, string> = {};
		for (const [k, v] of Object.entries(req.headers)) {
			if (typeof v === "string" && !["host", "connection", "content-length"].includes(k)) headers[k] = v;
		}
		const upstream = await fetch(`http://127.0.0.1:${comfyPort}${req.url ?? "/"}`, {
			method: req.method,
			headers,
			body: req.method === "GET" || req.method === "HEAD" ? undefined : body,
		});
		const out: Record<string, string> = {};
		upstream.headers.forEach((v, k) => {
			if (!["transfer-encoding", "connection", "content-encoding", "keep-alive"].includes(k)) out[k] = v;
		});
		res.writeHead(upstream.status, out);
		if (!upstream.body) return res.end();
		const reader = upstream.body.getReader();
		for (;;) {
			const { done, value } = await reader.read();
			if (done) break;
			res.write(value);
		}
		res.end();
	});
}

export interface VastEmulator {
	url: string;
	apiKey: string;
	close(): Promise<void>;
}

const OFFERS = [
	{
		id: 9001,
		gpu_name: "RTX 4090",
		num_gpus: 1,
		gpu_ram: 24564,
		reliability: 0.995,
		dph_total: 0.42,
		verified: true,
		rentable: true,
	},
	{
		id: 9002,
		gpu_name: "RTX 3090",
		num_gpus: 1,
		gpu_ram: 24576,
		reliability: 0.991,
		dph_total: 0.21,
		verified: true,
		rentable: true,
	},
	{
		id: 9003,
		gpu_name: "RTX 3080",
		num_gpus: 1,
		gpu_ram: 10240,
		reliability: 0.999,
		dph_total: 0.09,
		verified: true,
		rentable: true,
	},
	{
		id: 9004,
		gpu_name: "A100 PCIE",
		num_gpus: 1,
		gpu_ram: 40960,
		reliability: 0.97,
		dph_total: 0.8,
		verified: true,
		rentable: true,
	},
];

function matches(offer: Json, filter: Json): boolean {
	for (const [field, cond] of Object.entries(filter)) {
		if (typeof cond !== "object" || cond === null || !(field in offer)) continue;
		const v = offer[field] as number | string | boolean;
		for (const [op, arg] of Object.entries(cond as Json)) {
			const ok =
				op === "eq"
					? v === arg
					: op === "neq"
						? v !== arg
						: op === "gte"
							? (v as number) >= (arg as number)
							: op === "lte"
								? (v as number) <= (arg as number)
								: op === "gt"
									? (v as number) > (arg as number)
									: op === "lt"
										? (v as number) < (arg as number)
										: op === "in"
											? (arg as unknown[]).includes(v)
											: op === "notin"
												? !(arg as unknown[]).includes(v)
												: true;
			if (!ok) return false;
		}
	}
	return true;
}

interface Scope {
	single_use_offers?: boolean;
	no_offers?: boolean;
	refuse_key?: boolean;
	destroy_status?: number;
	destroy_retry_after_s?: number;
	/** The scope's first instance dies (`exited`) this long after it was first shown running: a host lost later. */
	first_dies_after_ms?: number;
	/** Instances created in this scope so far. */
	created?: number;
	/** The next this many creates answer 429 with `Retry-After: create_retry_after_s` (default 1). */
	create_429?: number;
	create_retry_after_s?: number;
	/** Offers rented in this scope (with single_use_offers). */
	rented: number[];
}

interface Instance {
	id: number;
	killed?: boolean;
	/** The fault scope it was created in (its offer is given back on destroy). */
	scope?: Scope;
	/** It dies this long after it is first shown running. */
	diesAfterMs?: number;
	dying?: boolean;
	/** Its port in front of ComfyUI, closed once it dies or is destroyed. */
	port?: LoopbackServer;
	portClosed?: boolean;
	label: string;
	offer: Json;
	body: Json;
	shows: number;
	destroyed: boolean;
}

export async function startVastEmulator(options: {
	apiKey?: string;
	comfyPort: number;
	addComfyToken: (token: string, options?: { modelsAfter?: number }) => void;
}): Promise<VastEmulator> {
	const apiKey = options.apiKey ?? "vast-emulator-key";
	const instances = new Map<number, Instance>();
	const searches: Json[] = [];
	let nextId = 5000;
	const scopes = new Map<string, Scope>();
	const timers: ReturnType<typeof setTimeout>[] = [];
	const scopeOf = (key: string): Scope | null => {
		if (key === apiKey) return { rented: [] };
		if (!key.startsWith(`${apiKey}.`)) return null;
		const name = key.slice(apiKey.length + 1);
		const scope = scopes.get(name) ?? { rented: [] };
		scopes.set(name, scope);
		return scope;
	};

	const send = sendJson;

	function view(inst: Instance): Json {
		const dies = String(inst.body.onstart ?? "").includes("#die");
		const status = inst.killed
			? "exited"
			: dies && inst.shows >= 2
				? "exited"
				: inst.shows < 1
					? null
					: inst.shows < 2
						? "loading"
						: "running";
		const base: Json = {
			id: inst.id,
			label: inst.label,
			actual_status: status,
			intended_status: "running",
			cur_state: status === "running" ? "running" : "stopped",
			gpu_name: inst.offer.gpu_name,
			dph_total: inst.offer.dph_total,
			public_ipaddr: "127.0.0.1",
			template_hash_id: inst.body.template_hash_id ?? null,
		};
		if (status === "exited") closePort(inst);
		if (status === "running" && inst.diesAfterMs !== undefined && !inst.dying) {
			inst.dying = true;
			const death = setTimeout(() => {
				inst.killed = true;
				closePort(inst);
			}, inst.diesAfterMs);
			timers.push(death);
		}
		if (status === "running") {
			base.ports = { "8188/tcp": [{ HostIp: "0.0.0.0", HostPort: String(inst.port?.port ?? options.comfyPort) }] };
		}
		return base;
	}

	/** The instance is gone: whoever still holds its address meets a refused connection. */
	function closePort(inst: Instance): void {
		if (inst.portClosed || !inst.port) return;
		inst.portClosed = true;
		void inst.port.close();
	}

	async function handle(req: NodeRequest, res: NodeResponse): Promise<void> {
		const url = new URL(req.url ?? "/", "http://emulator");
		const path = url.pathname;
		const text = new TextDecoder().decode(await readBody(req));
		const json = (): Json => {
			try {
				return JSON.parse(text) as Json;
			} catch {
				return {};
			}
		};
		if (path === "/_control/searches") return send(res, 200, searches);
		if (path === "/_control/instances" && req.method === "GET") {
			return send(
				res,
				200,
				[...instances.values()].map((i) => ({ ...view(i), destroyed: i.destroyed, body: i.body })),
			);
		}
		if (path === "/_control/instances" && req.method === "POST") {
			const id = nextId++;
			instances.set(id, {
				id,
				label: String(json().label ?? ""),
				offer: OFFERS[0] ?? {},
				body: {},
				shows: 2,
				destroyed: false,
				port: await instancePort(options.comfyPort),
			});
			return send(res, 200, { id });
		}
		const scopeControl = /^\/_control\/scopes\/([\w-]+)$/.exec(path);
		if (scopeControl && req.method === "PUT") {
			const name = scopeControl[1] as string;
			const before = scopes.get(name);
			scopes.set(name, {
				...(json() as Omit<Scope, "rented">),
				rented: before?.rented ?? [],
				created: before?.created,
			});
			return send(res, 200, { ok: true });
		}
		const kill = /^\/_control\/instances\/(\d+)\/kill$/.exec(path);
		if (kill && req.method === "POST") {
			const inst = instances.get(Number(kill[1]));
			if (!inst) return send(res, 404, { error: "no such instance" });
			inst.killed = true;
			closePort(inst);
			return send(res, 200, { ok: true });
		}
		const auth = String(req.headers.authorization ?? "");
		const scope = auth.startsWith("Bearer ") ? scopeOf(auth.slice(7)) : null;
		if (!scope || scope.refuse_key) {
			return send(res, 401, { success: false, error: "invalid_api_key", msg: "Invalid API key." });
		}

		if (req.method === "POST" && path === "/api/v0/bundles/") {
			const filter = json();
			searches.push(filter);
			const limit = typeof filter.limit === "number" ? filter.limit : 64;
			if (scope.no_offers) return send(res, 200, { offers: [] });
			const open = OFFERS.filter((o) => !scope.rented.includes(o.id) && matches(o, filter));
			return send(res, 200, { offers: open.slice(0, limit) });
		}
		const ask = /^\/api\/v0\/asks\/(\d+)\/$/.exec(path);
		if (req.method === "PUT" && ask) {
			const offer = OFFERS.find((o) => o.id === Number(ask[1]));
			if (!offer) return send(res, 404, { success: false, error: "no_such_ask" });
			if (scope.create_429) {
				scope.create_429 -= 1;
				const body = { success: false, error: "rate_limited", msg: "Too many requests." };
				return send(res, 429, body, { "retry-after": String(scope.create_retry_after_s ?? 1) });
			}
			if (scope.single_use_offers && scope.rented.includes(offer.id)) {
				return send(res, 400, {
					success: false,
					error: "no_such_ask",
					msg: `Offer ${offer.id} is no longer available.`,
				});
			}
			if (scope.single_use_offers) scope.rented.push(offer.id);
			const body = json();
			const id = nextId++;
			scope.created = (scope.created ?? 0) + 1;
			const diesAfterMs = scope.created === 1 ? scope.first_dies_after_ms : undefined;
			instances.set(id, {
				id,
				label: String(body.label ?? ""),
				offer,
				body,
				shows: 0,
				destroyed: false,
				scope,
				diesAfterMs,
				port: await instancePort(options.comfyPort),
			});
			const env = (body.env ?? {}) as Json;
			// `#models-late` in the onstart: ComfyUI answers before its model folders fill (two listings later).
			const late = String(body.onstart ?? "").includes("#models-late") ? { modelsAfter: 2 } : undefined;
			if (typeof env.WEB_PASSWORD === "string") options.addComfyToken(env.WEB_PASSWORD, late);
			return send(res, 200, { success: true, new_contract: id });
		}
		const one = /^\/api\/v0\/instances\/(\d+)\/$/.exec(path);
		if (one) {
			const inst = instances.get(Number(one[1]));
			if (req.method === "DELETE") {
				if (scope.destroy_status) {
					const body = { success: false, error: "rate_limited", msg: "Too many requests." };
					return send(res, scope.destroy_status, body, { "retry-after": String(scope.destroy_retry_after_s ?? 1) });
				}
				if (!inst || inst.destroyed) return send(res, 404, { success: false, error: "no_such_instance" });
				inst.destroyed = true;
				closePort(inst);
				// The machine is free again: its offer can be rented anew.
				if (inst.scope) inst.scope.rented = inst.scope.rented.filter((o) => o !== inst.offer.id);
				return send(res, 200, { success: true });
			}
			if (!inst || inst.destroyed) return send(res, 200, { instances: null });
			inst.shows += 1;
			return send(res, 200, { instances: view(inst) });
		}
		if (req.method === "GET" && path === "/api/v1/instances/") {
			const live = [...instances.values()].filter((i) => !i.destroyed).map(view);
			return send(res, 200, {
				success: true,
				instances_found: live.length,
				total_instances: live.length,
				next_token: null,
				instances: live,
			});
		}
		return send(res, 404, { success: false, error: "not found" });
	}

	const server = await serveOnLoopback(handle);
	const port = server.port;
	return {
		url: `http://127.0.0.1:${port}`,
		apiKey,
		close: async () => {
			for (const t of timers) clearTimeout(t);
			for (const inst of instances.values()) closePort(inst);
			await server.close();
		},
	};
}
