/**
 * A vastai backend against the vast.ai emulator (test/emulators/vastai/server.ts): its instances as the emulator
 * keeps them, a backend registered through the admin API, and a Wan job sent to it.
 */
import { expect, inject } from "vitest";
import { prompt } from "../emulators/pod/harness";
import { ADMIN, call } from "./api";

export const vast = () => inject("vastEmulator");

/** An instance as the emulator's control route lists it. */
export interface EmuInstance {
	id: number;
	label: string;
	actual_status: string | null;
	destroyed: boolean;
	body: { label?: string; onstart?: string; env?: Record<string, string>; image?: string };
}

/** Every instance the emulator has rented, destroyed ones included. */
export async function instances(): Promise<EmuInstance[]> {
	return (await (await fetch(`${vast().url}/_control/instances`)).json()) as EmuInstance[];
}

/** Registers (or replaces) the vastai backend `name` for wan2.2-i2v on the emulator; `config` overrides the defaults. */
export async function putVast(name: string, config: Record<string, unknown> = {}): Promise<void> {
	const res = await call(`/v1/admin/backends/${name}`, {
		method: "PUT",
		headers: ADMIN,
		body: JSON.stringify({
			kind: "vastai",
			models: ["wan2.2-i2v"],
			config: {
				api_key: vast().apiKey,
				base_url: vast().url,
				max_dph_usd: 0.5,
				min_reliability: 0.99,
				idle_destroy_s: 1,
				...config,
			},
		}),
	});
	expect(res.status).toBe(200);
}

/** A one-second wan2.2-i2v job of `image` on `backend` (accepted: 202); its id. */
export async function startWanJob(auth: Record<string, string>, image: string, backend: string): Promise<string> {
	const res = await call("/v1/jobs", {
		method: "POST",
		headers: auth,
		body: JSON.stringify({ model: "wan2.2-i2v", backend, input: { image, prompt: prompt(), duration_s: 1 } }),
	});
	expect(res.status).toBe(202);
	return ((await res.json()) as { id: string }).id;
}
