/** What can be configured (src/config/): the vars parsed once into `Config`, and each bad one refused by name. */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ConfigError, ConfigSchema, configOf } from "../../src/config";
import { app } from "../../src/index";

const configWith = (vars: Record<string, string>) => configOf(vars as unknown as Env);

describe("configuration", () => {
	it("parses the Worker's vars (wrangler.toml and the test bindings) once", () => {
		const config = configOf(env);
		expect(configOf(env)).toBe(config);
		expect(config).toMatchObject({
			maxVideoBytes: 2_147_483_648,
			publicUrl: "http://reelgate.test",
			corsOrigins: ["*"],
			allowLoopbackWebhooks: true,
			eventStreamReauthMs: 200,
			multipart: { thresholdBytes: 67_108_864, partBytes: 16_777_216 },
			limits: { requests_per_minute: 1200, jobs_per_minute: 120, max_concurrent_jobs: 50, monthly_spend_cap_usd: null },
			s3: null,
		});
	});

	it("gives every unset or empty var its default", () => {
		const defaults = ConfigSchema.parse({});
		expect(ConfigSchema.parse({ MAX_VIDEO_BYTES: "", PUBLIC_URL: " " })).toEqual(defaults);
		expect(defaults).toMatchObject({
			media: { maxImageBytes: 26_214_400, maxAudioBytes: 104_857_600, maxImageWidth: 8192, maxAudioSeconds: 600 },
			uploadUrlTtlS: 3600,
			backendUrlTtlS: 7200,
			jobDeadlineS: 3600,
			urlInputs: { timeoutMs: 30_000, allowLoopback: false },
			publicUrl: null,
			corsOrigins: [],
			keepWarm: { backends: [], startHour: 0, endHour: 24, offsetMinutes: 0 },
		});
	});

	it.each([
		[{ MAX_VIDEO_BYTES: "1.5" }, /MAX_VIDEO_BYTES must be a whole number from 1 to \d+, not "1.5"/],
		[{ JOB_DEADLINE_S: "0" }, /JOB_DEADLINE_S must be a whole number from 1/],
		[{ MULTIPART_PART_BYTES: "1048576" }, /MULTIPART_PART_BYTES must be a whole number from 5242880 to 5368709120/],
		[{ MAX_AUDIO_SECONDS: "-2" }, /MAX_AUDIO_SECONDS must be a number from 1 to/],
		[{ MONTHLY_SPEND_CAP_USD: "lots" }, /MONTHLY_SPEND_CAP_USD must be empty or a number of at least 0/],
		[{ ALLOW_LOOPBACK_URL_INPUTS: "yes" }, /ALLOW_LOOPBACK_URL_INPUTS must be "true" or "false", not "yes"/],
		[{ PUBLIC_URL: "reelgate.example" }, /PUBLIC_URL must be an http\(s\) URL/],
		[{ KEEP_WARM_HOURS: "8to20" }, /KEEP_WARM_HOURS must look like "8-20"/],
		[
			{ R2_ACCOUNT_ID: "acct" },
			/R2_ACCESS_KEY_ID must be set with .*R2_SECRET_ACCESS_KEY must be set with .*R2_BUCKET/,
		],
	])("refuses %o, naming the variable and the rule", (vars, message) => {
		expect(() => configWith(vars)).toThrow(ConfigError);
		expect(() => configWith(vars)).toThrow(message);
	});

	it("reads R2's S3 settings only when all four are given", () => {
		const s3 = configWith({
			R2_ACCOUNT_ID: "acct",
			R2_ACCESS_KEY_ID: "AKID",
			R2_SECRET_ACCESS_KEY: "secret",
			R2_BUCKET: "media",
		}).s3;
		expect(s3).toEqual({
			accessKeyId: "AKID",
			secretAccessKey: "secret",
			bucket: "media",
			endpoint: "https://acct.r2.cloudflarestorage.com",
			region: "auto",
		});
	});

	it("fails every request of a Worker started with a bad var, instead of running on a fallback", async () => {
		const ctx = createExecutionContext();
		const res = await app.fetch(new Request("http://reelgate.test/healthz"), { ...env, MAX_VIDEO_BYTES: "lots" }, ctx);
		await waitOnExecutionContext(ctx);
		expect(res.status).toBe(500);
		expect(await res.json()).toMatchObject({ code: "internal", detail: "An internal error occurred." });
	});
});
