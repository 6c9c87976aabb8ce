/**
 * Helpers for the security suites (test/integration/security-*.test.ts): the live OpenAPI document as a list of
 * operations, a tenant with one of everything (uploads, a succeeded job with its video and the signed URLs its
 * backend got, a share link, a webhook secret), problem assertions and console capture.
 */
import { expect, vi } from "vitest";
import { emulator, relayTransfers } from "../emulators/pod/harness";
import { ADMIN, call, PNG, revealWebhookSecret, upload } from "./api";
import { stepUntil } from "./job-object";
import { startJob } from "./notify";

export type Security = "apiKey" | "adminToken" | "none";

/** One operation of `/openapi.json`: `path` is the template (`/v1/jobs/{id}`), `params` its path parameters. */
export interface Operation {
	method: string;
	path: string;
	security: Security;
	params: string[];
}

/** Every operation the live document lists, so routes added later are swept without touching the tests. */
export async function openApiOperations(): Promise<Operation[]> {
	const res = await call("/openapi.json");
	const doc = (await res.json()) as {
		paths: Record<string, Record<string, { security?: Record<string, unknown>[] }>>;
	};
	const ops: Operation[] = [];
	for (const [path, item] of Object.entries(doc.paths)) {
		for (const [method, op] of Object.entries(item)) {
			const schemes = (op.security ?? []).flatMap((s) => Object.keys(s));
			const security: Security = schemes.includes("adminToken")
				? "adminToken"
				: schemes.includes("apiKey")
					? "apiKey"
					: "none";
			const params = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1] ?? "");
			ops.push({ method: method.toUpperCase(), path, security, params });
		}
	}
	return ops;
}

export const label = (op: Pick<Operation, "method" | "path">): string => `${op.method} ${op.path}`;

/** The concrete path of `op` with `values` for its parameters (each URL-encoded, `/` kept for `{key}`). */
export function fill(path: string, values: Record<string, string>): string {
	return path.replace(/\{([^}]+)\}/g, (_, name: string) => {
		const value = values[name];
		if (value === undefined) throw new Error(`no value for {${name}} in ${path}`);
		return value.split("/").map(encodeURIComponent).join("/");
	});
}

/** A request for `op` at `path`: JSON `{}` for methods that carry a body, so body validation never masks auth. */
export function request(op: Pick<Operation, "method">, path: string, headers: Record<string, string>) {
	const init: RequestInit = { method: op.method, headers: { "content-type": "application/json", ...headers } };
	if (op.method !== "GET" && op.method !== "HEAD" && op.method !== "DELETE") init.body = "{}";
	return call(path, init);
}

/** Reads a response whole, or just cancels it when it is a stream (events, video). */
export async function drain(res: Response): Promise<string> {
	const type = res.headers.get("content-type") ?? "";
	if (type.startsWith("text/event-stream") || type.startsWith("video/")) {
		await res.body?.cancel();
		return "";
	}
	return res.text();
}

export interface ProblemSeen {
	status: number;
	code: string;
	detail: string;
	text: string;
}

/** Asserts an RFC 9457 problem (JSON, never HTML) with one of `statuses`; returns what it said. */
export async function expectProblem(res: Response, statuses: number | number[], code?: string): Promise<ProblemSeen> {
	const text = await res.text();
	const allowed = Array.isArray(statuses) ? statuses : [statuses];
	expect(allowed, `${res.status} ${text.slice(0, 300)}`).toContain(res.status);
	expect(res.headers.get("content-type")).toBe("application/problem+json");
	expect(text).not.toMatch(/<html|<!doctype/i);
	const body = JSON.parse(text) as { status: number; code: string; detail: string };
	expect(body.status).toBe(res.status);
	if (code) expect(body.code).toBe(code);
	return { status: res.status, code: body.code, detail: body.detail, text };
}

export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

/** A fresh API key for `account` (created with the account if new): the raw key, its id and its auth headers. */
export async function newKey(
	account: string,
	scopes?: string[],
): Promise<{ key: string; id: string; auth: Record<string, string> }> {
	const res = await call("/v1/admin/keys", {
		method: "POST",
		headers: ADMIN,
		body: JSON.stringify({ name: `test-${account}`, account, scopes }),
	});
	if (res.status !== 201) throw new Error(`key creation failed: ${res.status} ${await res.text()}`);
	const { key, id } = (await res.json()) as { key: string; id: string };
	return { key, id, auth: { ...bearer(key), "content-type": "application/json" } };
}

/** Everything one account owns that another might reach for. */
export interface Tenant {
	account: string;
	key: string;
	keyId: string;
	auth: Record<string, string>;
	readyUpload: string;
	pendingUpload: string;
	/** A succeeded job with its video in R2. */
	jobId: string;
	/** A job still queued (cancelable). */
	queuedJobId: string;
	shareUrl: string;
	webhookSecret: string;
	/** The signed URLs the backend got for the succeeded job. */
	backendUrls: { inputs: Record<string, string>; output: { url: string; headers: Record<string, string> } };
}

/** Builds a tenant on the pod emulator backend `backend` (created if missing). */
export async function makeTenant(account: string, backend: string): Promise<Tenant> {
	const { key, id, auth } = await newKey(account);
	const readyUpload = await upload(auth, PNG, "image/png", "ready.png");
	const pendingUpload = await upload(auth, PNG, "image/png", "pending.png", false);
	const jobId = await startJob(auth, backend);
	const running = await stepUntil(jobId, (j) => j.status === "running");
	const info = (await (await emulator(`/_control/jobs/${running.remote_id}`)).json()) as {
		input: {
			inputs: Record<string, { url: string }>;
			output: { put: { url: string; headers: Record<string, string> } };
		};
	};
	await relayTransfers(running.remote_id ?? "");
	await stepUntil(jobId, (j) => j.status === "succeeded");
	const queuedJobId = await startJob(auth, backend);
	const share = await call(`/v1/jobs/${jobId}/share`, { method: "POST", headers: auth });
	if (share.status !== 200) throw new Error(`share failed: ${share.status} ${await share.text()}`);
	const webhookSecret = await revealWebhookSecret(account);
	return {
		account,
		key,
		keyId: id,
		auth,
		readyUpload,
		pendingUpload,
		jobId,
		queuedJobId,
		shareUrl: ((await share.json()) as { url: string }).url,
		webhookSecret,
		backendUrls: {
			inputs: Object.fromEntries(Object.entries(info.input.inputs).map(([k, v]) => [k, v.url])),
			output: info.input.output.put,
		},
	};
}

/** Captures every console line (the Worker and its Durable Objects log through the same isolate's console). */
export function captureConsole(): { lines: string[]; restore: () => void } {
	const lines: string[] = [];
	const capture = (...args: unknown[]) => {
		lines.push(args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" "));
	};
	const spies = (["log", "info", "warn", "error", "debug"] as const).map((level) =>
		vi.spyOn(console, level).mockImplementation(capture),
	);
	return {
		lines,
		restore: () => {
			for (const spy of spies) spy.mockRestore();
		},
	};
}
