import { describe, expect, it } from "vitest";
import { buildParams } from "../../durable-objects/job/input";
import { parseRemoteError } from "../../src/backends/remote-error";
import { parseStatus } from "../../src/backends/runpod-protocol";
import { canonicalJson } from "../../src/lib/canonical-json";
import { open, openJson, seal, sealJson } from "../../src/lib/secret-box";

describe("pod /status parsing", () => {
	it.each([
		[
			{ id: "a", status: "IN_QUEUE" },
			{ ok: true, state: "queued" },
		],
		[
			{ id: "a", status: "IN_PROGRESS", output: { progress: { stage: "sampling", percent: 42, message: "3/4" } } },
			{ ok: true, state: "running", progress: { stage: "sampling", percent: 42, message: "3/4" } },
		],
		[
			{ id: "a", status: "RUNNING" },
			{ ok: true, state: "running" },
		],
		[
			{ id: "a", status: "CANCELLED" },
			{ ok: true, state: "canceled" },
		],
		[
			{ id: "a", status: "TIMED_OUT" },
			{ ok: true, state: "failed", error: { code: "timeout", message: "The backend timed the job out." } },
		],
		[
			{ id: "a", status: "COMPLETED", executionTime: 1500 },
			{ ok: true, state: "failed", error: { code: "output_missing" }, executionMs: 1500 },
		],
		[
			{ id: "a", status: "COMPLETED", executionTime: 5400, output: { video: { size: 9, sha256: "ab", fps: 16 } } },
			{ ok: true, state: "completed", executionMs: 5400, output: { size: 9, sha256: "ab", fps: 16 } },
		],
		[
			{ id: "a", status: "WEIRD" },
			{ ok: false, reason: "bad_answer" },
		],
		["not json", { ok: false, reason: "bad_answer" }],
	])("%j", (body, expected) => {
		expect(parseStatus(body)).toMatchObject(expected);
	});

	it.each([
		[
			{ code: "models_missing", message: "no wan" },
			{ code: "models_missing", message: "no wan" },
		],
		['{"code":"invalid_input","message":"bad"}', { code: "invalid_input", message: "bad" }],
		["CUDA out of memory", { code: "inference_failed", message: "CUDA out of memory" }],
		[undefined, { code: "inference_failed" }],
	])("error %j", (error, expected) => {
		expect(parseRemoteError(error)).toMatchObject(expected);
	});
});

describe("job params", () => {
	it("defaults per model", () => {
		expect(buildParams("preview", {}, false)).toEqual({ width: 512, height: 288, fps: 24, duration_s: 5 });
		expect(buildParams("wan2.2-i2v", {}, false)).toEqual({ width: 640, height: 640, fps: 16, duration_s: 5 });
	});

	it("lets the audio set the duration when none is given", () => {
		expect(buildParams("wan2.2-s2v", {}, true)).toEqual({ width: 640, height: 640, fps: 16 });
	});

	it("takes the request's values", () => {
		expect(
			buildParams(
				"preview",
				{ resolution: "832x480", duration_s: 3, fps: 12, seed: 4, steps: 6, prompt: "p", negative_prompt: "n" },
				true,
			),
		).toEqual({
			width: 832,
			height: 480,
			fps: 12,
			duration_s: 3,
			seed: 4,
			steps: 6,
			prompt: "p",
			negative_prompt: "n",
		});
	});
});

describe("canonical JSON", () => {
	it("sorts keys at every level and drops undefined", () => {
		expect(canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: undefined } })).toBe('{"a":{"d":[{"y":2,"z":1}]},"b":1}');
	});
});

describe("secret box", () => {
	const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));

	it("round-trips with a fresh IV per value", async () => {
		const a = await seal(key, "s3cret");
		const b = await seal(key, "s3cret");
		expect(a).not.toBe(b);
		expect(a).not.toContain("s3cret");
		expect(await open(key, a)).toBe("s3cret");
		expect(await openJson(key, await sealJson(key, { token: "t" }))).toEqual({ token: "t" });
		expect(await openJson(key, null)).toEqual({});
	});

	it("refuses a wrong key, a tampered box and a short key", async () => {
		const box = await seal(key, "x");
		const other = btoa(String.fromCharCode(...new Uint8Array(32)));
		await expect(open(other, box)).rejects.toThrow(/decrypted/);
		await expect(open(key, `${box.slice(0, -4)}AAAA`)).rejects.toThrow();
		await expect(seal(btoa("short"), "x")).rejects.toThrow(/32 bytes/);
	});
});
