/**
 * The cost where a client looks: the webhook that says a job ended, and the stream's last event, carry its GPU
 * seconds, dollars, the price they were billed at, the backend and how many submissions it took.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { JobView } from "../../src/schemas/jobs";
import { prompt } from "../emulators/pod/harness";
import { call, newAccount, PNG, upload } from "../helpers/api";
import { stepUntil } from "../helpers/job-object";
import { alarmUntil, hook, runToSuccess, startJob } from "../helpers/notify";

let auth: Record<string, string>;
beforeAll(async () => {
	auth = await newAccount("cost");
});

describe("cost", () => {
	it("is in the succeeded webhook and the final event, with its price, backend and submissions", async () => {
		const target = hook("cost");
		const id = await startJob(auth, "pod-cost", { webhook: { url: target.url } });
		await runToSuccess(id);
		await alarmUntil(id, (j) => j.deliveries?.[0]?.status === "delivered");
		const [delivered] = await target.received();
		const payload = JSON.parse(delivered?.body ?? "{}") as { type: string; data: JobView };
		expect(payload.type).toBe("job.succeeded");
		const expected = {
			gpu_seconds: 5.4,
			usd: 0.0027,
			price_per_second_usd: 0.0005,
			backend: "pod-cost",
			backend_kind: "pod",
			submissions: 1,
			// The pod emulator reports a delayTime of 120 ms, and names its GPU.
			backend_delay_s: 0.12,
			gpu_type: "Emulated GPU (pod emulator)",
		};
		expect(payload.data.cost).toEqual(expected);
		const stream = await call(`/v1/jobs/${id}/events`, { headers: auth });
		const last = (await stream.text()).trim().split("\n\n").pop() ?? "";
		expect(last).toMatch(/^id: \d+\nevent: status\n/m);
		const data = JSON.parse(
			last
				.split("\n")
				.find((l) => l.startsWith("data: "))
				?.slice(6) ?? "null",
		) as JobView;
		expect(data.status).toBe("succeeded");
		expect(data.cost).toEqual(expected);
	});

	it("is zero, and known, for a job canceled before it was ever submitted", async () => {
		// Its backend refuses every submission (503), so it is never submitted, however the alarm races the cancel.
		const first = await startJob(auth, "pod-cost");
		await call(`/v1/jobs/${first}/cancel`, { method: "POST", headers: auth });
		const image = await upload(auth, PNG, "image/png", "fox.png");
		const res = await call("/v1/jobs", {
			method: "POST",
			headers: auth,
			body: JSON.stringify({ model: "preview", backend: "pod-cost", input: { image, prompt: prompt("run=503*9") } }),
		});
		const { id } = (await res.json()) as { id: string };
		await stepUntil(id, (j) => j.transient_failures >= 1);
		const canceled = await call(`/v1/jobs/${id}/cancel`, { method: "POST", headers: auth });
		const view = (await canceled.json()) as JobView;
		expect(view.status).toBe("canceled");
		expect(view.cost).toMatchObject({ gpu_seconds: 0, usd: 0, submissions: 0, backend: "pod-cost" });
	});
});
