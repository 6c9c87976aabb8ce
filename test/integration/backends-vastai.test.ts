import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN, call, newAccount, PNG, upload } from "../helpers/api";
import { stepUntil } from "../helpers/job-object";
import { type EmuInstance, instances, putVast, startWanJob, vast } from "../helpers/vast";

let auth: Record<string, string>;
let image: string;

const startJob = (backend: string) => startWanJob(auth, image, backend);

beforeAll(async () => {
	auth = await newAccount("vast");
	image = await upload(auth, PNG, "image/png", "fox.png");
});

describe("vastai backend", () => {
	it("rents a fitting offer, waits for ComfyUI, runs the job there, and destroys the idle instance", async () => {
		await putVast("vast-1");
		const id = await startJob("vast-1");
		const job = await stepUntil(id, (j) => j.status === "succeeded" || j.status === "failed", 20);
		expect(job.status).toBe("succeeded");
		expect(job.remote_id).toMatch(/^\d+\/[0-9a-f-]{36}$/);
		// Cost from the rented offer's hourly price (the RTX 3090 at $0.21/h) × the execution time (4.2 s).
		expect(job.spec.backend.price_per_second_usd).toBeCloseTo(0.21 / 3600, 12);
		expect(job.cost).toEqual({ gpu_seconds: 4.2, usd: Math.round(4.2 * (0.21 / 3600) * 1e6) / 1e6 });
		// The booting instance was not held against the backend's health.
		expect((await env.BACKENDS.getByName("vast-1").snapshot()).breaker.state).toBe("closed");
		const searches = (await (await fetch(`${vast().url}/_control/searches`)).json()) as Record<string, unknown>[];
		expect(searches.at(-1)).toMatchObject({
			gpu_ram: { gte: 24000 },
			dph_total: { lte: 0.5 },
			reliability: { gte: 0.99 },
		});
		const ours = (await instances()).filter((i) => i.label === "reelgate:vast-1");
		expect(ours).toHaveLength(1);
		const inst = ours[0] as EmuInstance;
		expect(inst.body.env?.WEB_PASSWORD).toMatch(/^[A-Za-z0-9_-]{32}$/);
		// The onstart fetches the model's files itself (no repository to clone), each verified before ComfyUI sees it.
		expect(inst.body.onstart).not.toContain("git clone");
		expect(inst.body.onstart).toContain(
			"get 'diffusion_models' 'wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors' 'https://huggingface.co/",
		);
		expect(inst.body.onstart).toContain('mv "$f.part" "$f"');
		expect(inst.destroyed).toBe(false);
		// Idle past idle_destroy_s (its last use moved back 2 s in the object's storage, instead of sleeping): the
		// backend's alarm destroys it.
		await runInDurableObject(env.BACKENDS.getByName("vast-1"), (_instance, state) => {
			state.storage.sql.exec(
				"UPDATE meta SET value = json_set(value, '$.last_used_at', json_extract(value, '$.last_used_at') - 2000) WHERE key = 'vast'",
			);
		});
		expect(await runDurableObjectAlarm(env.BACKENDS.getByName("vast-1"))).toBe(true);
		expect((await instances()).find((i) => i.id === inst.id)?.destroyed).toBe(true);
		expect(await env.BACKENDS.getByName("vast-1").vastInstance()).toBeNull();
	});

	it("reconciliation destroys orphans labelled for the backend and leaves other instances alone", async () => {
		await putVast("vast-2", { idle_destroy_s: 3600 });
		const id = await startJob("vast-2");
		await stepUntil(id, (j) => j.status === "succeeded", 20);
		const own = (await instances()).find((i) => i.label === "reelgate:vast-2" && !i.destroyed);
		const orphan = (await (
			await fetch(`${vast().url}/_control/instances`, {
				method: "POST",
				body: JSON.stringify({ label: "reelgate:vast-2" }),
			})
		).json()) as { id: number };
		const foreign = (await (
			await fetch(`${vast().url}/_control/instances`, { method: "POST", body: JSON.stringify({ label: "my-own-box" }) })
		).json()) as { id: number };
		await runDurableObjectAlarm(env.BACKENDS.getByName("vast-2"));
		const after = await instances();
		expect(after.find((i) => i.id === orphan.id)?.destroyed).toBe(true);
		expect(after.find((i) => i.id === foreign.id)?.destroyed).toBe(false);
		expect(after.find((i) => i.id === own?.id)?.destroyed).toBe(false);
		// Deleting the backend destroys its instance: nothing is left billing.
		expect((await call("/v1/admin/backends/vast-2", { method: "DELETE", headers: ADMIN })).status).toBe(204);
		expect((await instances()).find((i) => i.id === own?.id)?.destroyed).toBe(true);
	});

	it("an instance that exits while booting is destroyed and another is rented", async () => {
		await putVast("vast-3", { onstart: "echo #die" });
		const id = await startJob("vast-3");
		for (let i = 0; i < 8; i++) await runDurableObjectAlarm(env.BACKENDS.getByName("vast-3")).catch(() => false);
		await stepUntil(id, () => false, 8).catch(() => undefined);
		const ours = (await instances()).filter((i) => i.label === "reelgate:vast-3");
		expect(ours.length).toBeGreaterThanOrEqual(2);
		expect(ours.filter((i) => !i.destroyed).length).toBeLessThanOrEqual(1);
		expect((await call(`/v1/jobs/${id}/cancel`, { method: "POST", headers: auth })).status).toBe(200);
	});

	it("test reports the offers that fit and the instance", async () => {
		await putVast("vast-4");
		const res = await call("/v1/admin/backends/vast-4/test", { method: "POST", headers: ADMIN });
		const health = (await res.json()) as { reachable: boolean; details: Record<string, unknown> };
		expect(health).toMatchObject({
			reachable: true,
			details: { offers_available: 2, cheapest_dph: 0.21, instance: null, waiting: null },
		});
	});
});
