// A creation whose request died midway (the runtime killed between the idempotency claim and its completion) is
// finished by the client's retry with the same Idempotency-Key, under the job id the claim recorded: the key is
// neither stuck in 409 for 24 h nor able to create a second job.
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { ABANDONED_CLAIM_MS } from "../../src/db/idempotency";
import { putPodBackend } from "../emulators/pod/harness";
import { call, newAccount, PNG, upload } from "../helpers/api";

let auth: Record<string, string>;
let image: string;

beforeAll(async () => {
	expect((await putPodBackend("pod-resume")).status).toBe(200);
	auth = await newAccount("resume");
	image = await upload(auth, PNG, "image/png", "fox.png");
});

const body = () => ({ model: "preview", input: { image, prompt: "resume" }, backend: "pod-resume" });

function post(key: string) {
	return call("/v1/jobs", {
		method: "POST",
		headers: { ...auth, "idempotency-key": key },
		body: JSON.stringify(body()),
	});
}

/** Turns the key's record back into a claim left `in_flight` by a request that died `agoMs` ago. */
async function abandon(key: string, agoMs: number, jobId?: string): Promise<void> {
	const at = new Date(Date.now() - agoMs).toISOString();
	await env.DB.prepare(
		"UPDATE idempotency_keys SET state = 'in_flight', created_at = ?, job_id = COALESCE(?, job_id) WHERE idem_key = ?",
	)
		.bind(at, jobId ?? null, key)
		.run();
}

describe("an Idempotency-Key whose first request died", () => {
	it("returns the job the dead request had already created (200), once", async () => {
		const key = crypto.randomUUID();
		const first = await post(key);
		expect(first.status).toBe(202);
		const { id } = (await first.json()) as { id: string };
		await abandon(key, ABANDONED_CLAIM_MS + 5000);

		const retried = await post(key);
		expect(retried.status).toBe(200);
		expect(((await retried.json()) as { id: string }).id).toBe(id);
		// The claim is complete again: a further retry is a plain replay.
		const replay = await post(key);
		expect([replay.status, ((await replay.json()) as { id: string }).id]).toEqual([200, id]);
	});

	it("creates the job under the claimed id when the dead request never got that far (202)", async () => {
		const key = crypto.randomUUID();
		expect((await post(key)).status).toBe(202);
		const claimed = `job_resume${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
		await abandon(key, ABANDONED_CLAIM_MS + 5000, claimed);

		const retried = await post(key);
		expect(retried.status).toBe(202);
		expect(((await retried.json()) as { id: string }).id).toBe(claimed);
		const got = await call(`/v1/jobs/${claimed}`, { headers: auth });
		expect(got.status).toBe(200);
	});

	it("still answers 409 while the claim is recent (its request may be running)", async () => {
		const key = crypto.randomUUID();
		expect((await post(key)).status).toBe(202);
		await abandon(key, 1000);
		const res = await post(key);
		expect(res.status).toBe(409);
		expect(((await res.json()) as { code: string }).code).toBe("idempotency_in_flight");
	});
});
