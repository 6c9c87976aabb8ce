/**
 * What can be configured: every var the Worker reads (wrangler.toml `[vars]`, `.dev.vars`, `--var`), in one zod
 * schema, parsed once per environment into a typed `Config` that the rest of the code reads instead of `env`. A
 * var that is unset (or empty) takes its default; one that is set to something the schema refuses is an error
 * naming the variable and the rule, raised by the first request or object that starts with it, so a bad deploy
 * fails loudly instead of running on a silent fallback. The Worker's own secrets (ADMIN_TOKEN, SIGNING_SECRET,
 * BACKEND_SECRETS_KEY) are read where they are used; only R2's S3 credentials join `Config`, for the presigner.
 */
import { z } from "zod";
import { KeepWarmConfigError, parseKeepWarmConfig } from "./keep-warm";
import { s3ConfigFrom } from "./s3";

const MiB = 1024 * 1024;

/**
 * The content bounds of uploads (`Config.media`), one shape so the upload route, URL inputs and the
 * verifier agree.
 */
export interface MediaLimits {
	maxImageBytes: number;
	maxAudioBytes: number;
	minImageWidth: number;
	minImageHeight: number;
	maxImageWidth: number;
	maxImageHeight: number;
	/** Longest accepted audio, in seconds. */
	maxAudioSeconds: number;
}

interface IssueSink {
	addIssue(issue: { code: "custom"; message: string; path?: string[] }): void;
}

/** Unset and "" both mean "the default". */
const unset = (raw: string | undefined): raw is undefined | "" => raw === undefined || raw.trim() === "";

function refuse(ctx: IssueSink, message: string): never {
	ctx.addIssue({ code: "custom", message });
	return z.NEVER;
}

/** A number in [min, max], whole unless `fractional`; unset: `fallback`. */
function numeric(fallback: number, { min = 1, max = Number.MAX_SAFE_INTEGER, fractional = false } = {}) {
	const rule = `${fractional ? "a number" : "a whole number"} from ${min} to ${max}`;
	return z
		.string()
		.optional()
		.transform((raw, ctx) => {
			if (unset(raw)) return fallback;
			const n = Number(raw);
			const fits = Number.isFinite(n) && (fractional || Number.isInteger(n)) && n >= min && n <= max;
			return fits ? n : refuse(ctx, `must be ${rule}, not "${raw}"`);
		});
}

/** A number of at least 0; unset: none (null). */
const optionalAmount = z
	.string()
	.optional()
	.transform((raw, ctx) => {
		if (unset(raw)) return null;
		const n = Number(raw);
		return Number.isFinite(n) && n >= 0 ? n : refuse(ctx, `must be empty or a number of at least 0, not "${raw}"`);
	});

/** "true" or "false"; unset: false. */
const flag = z
	.string()
	.optional()
	.transform((raw, ctx) => {
		if (unset(raw) || raw === "false") return false;
		return raw === "true" ? true : refuse(ctx, `must be "true" or "false", not "${raw}"`);
	});

/** An http(s) origin, trailing slashes dropped; unset: none. */
const origin = z
	.string()
	.optional()
	.transform((raw, ctx) => {
		if (unset(raw)) return null;
		const url = URL.parse(raw.trim());
		if (url && (url.protocol === "https:" || url.protocol === "http:")) return raw.trim().replace(/\/+$/, "");
		return refuse(ctx, `must be an http(s) URL, not "${raw}"`);
	});

/** A comma-separated list, entries trimmed, empty ones dropped. */
const list = z
	.string()
	.optional()
	.transform((raw) =>
		(raw ?? "")
			.split(",")
			.map((s) => s.trim())
			.filter(Boolean),
	);

const text = z.string().optional();

/** R2's S3 settings: all four of these, or none. */
const S3_REQUIRED = ["R2_ACCOUNT_ID", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "R2_BUCKET"] as const;

export const ConfigSchema = z
	.object({
		MAX_IMAGE_BYTES: numeric(25 * MiB),
		MAX_AUDIO_BYTES: numeric(100 * MiB),
		MAX_VIDEO_BYTES: numeric(2048 * MiB),
		MIN_IMAGE_WIDTH: numeric(1),
		MIN_IMAGE_HEIGHT: numeric(1),
		MAX_IMAGE_WIDTH: numeric(8192),
		MAX_IMAGE_HEIGHT: numeric(8192),
		MAX_AUDIO_SECONDS: numeric(600, { fractional: true }),
		MULTIPART_THRESHOLD_BYTES: numeric(64 * MiB),
		// R2's bounds on a multipart upload's parts: 5 MiB to 5 GiB.
		MULTIPART_PART_BYTES: numeric(16 * MiB, { min: 5 * MiB, max: 5 * 1024 * MiB }),
		URL_INPUT_TIMEOUT_MS: numeric(30_000),
		EVENT_STREAM_REAUTH_MS: numeric(15_000),
		UPLOAD_URL_TTL_S: numeric(3600),
		BACKEND_URL_TTL_S: numeric(7200),
		JOB_DEADLINE_S: numeric(3600),
		PUBLIC_URL: origin,
		CORS_ORIGINS: list,
		ALLOW_LOOPBACK_WEBHOOKS: flag,
		ALLOW_LOOPBACK_URL_INPUTS: flag,
		RATE_LIMIT_REQUESTS_PER_MINUTE: numeric(1200),
		RATE_LIMIT_JOBS_PER_MINUTE: numeric(120),
		MAX_CONCURRENT_JOBS: numeric(50),
		MONTHLY_SPEND_CAP_USD: optionalAmount,
		KEEP_WARM_BACKENDS: text,
		KEEP_WARM_HOURS: text,
		KEEP_WARM_TZ_OFFSET: text,
		R2_ACCOUNT_ID: text,
		R2_ACCESS_KEY_ID: text,
		R2_SECRET_ACCESS_KEY: text,
		R2_BUCKET: text,
		R2_ENDPOINT: text,
		R2_REGION: text,
	})
	.superRefine((vars, ctx) => {
		const missing = S3_REQUIRED.filter((name) => unset(vars[name]));
		if (missing.length === 0 || missing.length === S3_REQUIRED.length) return;
		for (const name of missing) {
			ctx.addIssue({
				code: "custom",
				path: [name],
				message: `must be set with ${S3_REQUIRED.join(", ")} (all or none)`,
			});
		}
	})
	.transform((v, ctx) => ({
		media: {
			maxImageBytes: v.MAX_IMAGE_BYTES,
			maxAudioBytes: v.MAX_AUDIO_BYTES,
			minImageWidth: v.MIN_IMAGE_WIDTH,
			minImageHeight: v.MIN_IMAGE_HEIGHT,
			maxImageWidth: v.MAX_IMAGE_WIDTH,
			maxImageHeight: v.MAX_IMAGE_HEIGHT,
			maxAudioSeconds: v.MAX_AUDIO_SECONDS,
		} satisfies MediaLimits,
		/** Largest video a GPU backend may write for a job. */
		maxVideoBytes: v.MAX_VIDEO_BYTES,
		/** Uploads above `thresholdBytes` get part URLs of `partBytes` each. */
		multipart: { thresholdBytes: v.MULTIPART_THRESHOLD_BYTES, partBytes: v.MULTIPART_PART_BYTES },
		urlInputs: { timeoutMs: v.URL_INPUT_TIMEOUT_MS, allowLoopback: v.ALLOW_LOOPBACK_URL_INPUTS },
		eventStreamReauthMs: v.EVENT_STREAM_REAUTH_MS,
		uploadUrlTtlS: v.UPLOAD_URL_TTL_S,
		backendUrlTtlS: v.BACKEND_URL_TTL_S,
		jobDeadlineS: v.JOB_DEADLINE_S,
		/** The origin GPU backends reach the Worker at; null: each request's own. */
		publicUrl: v.PUBLIC_URL,
		/** Browser origins CORS allows; `*` among them allows any. */
		corsOrigins: v.CORS_ORIGINS,
		allowLoopbackWebhooks: v.ALLOW_LOOPBACK_WEBHOOKS,
		/** The per-account defaults (an account's own value wins: src/limits/config.ts). */
		limits: {
			requests_per_minute: v.RATE_LIMIT_REQUESTS_PER_MINUTE,
			jobs_per_minute: v.RATE_LIMIT_JOBS_PER_MINUTE,
			max_concurrent_jobs: v.MAX_CONCURRENT_JOBS,
			monthly_spend_cap_usd: v.MONTHLY_SPEND_CAP_USD,
		},
		keepWarm: keepWarmOf(v, ctx),
		/** R2's S3 API, for presigned URLs; null: the Worker signs its own. */
		s3: s3ConfigFrom(v),
	}));

/** The keep-warm settings, read by their own parser (src/ops/schedule.ts), whose messages name the variable. */
function keepWarmOf(vars: Parameters<typeof parseKeepWarmConfig>[0], ctx: IssueSink) {
	try {
		return parseKeepWarmConfig(vars);
	} catch (err) {
		if (err instanceof KeepWarmConfigError) return refuse(ctx, err.message);
		throw err;
	}
}

export type Config = z.infer<typeof ConfigSchema>;

/** Variables the schema refused, each named with its rule. */
export class ConfigError extends Error {
	override name = "ConfigError";
}

const parsed = new WeakMap<object, Config>();

/** The configuration of `env`, parsed on first use and kept; throws `ConfigError` naming each bad variable. */
export function configOf(env: Env): Config {
	const cached = parsed.get(env);
	if (cached) return cached;
	const result = ConfigSchema.safeParse(env);
	if (!result.success) {
		const problems = result.error.issues.map((i) => [...i.path, i.message].join(" "));
		throw new ConfigError(`Invalid configuration: ${problems.join("; ")}.`);
	}
	parsed.set(env, result.data);
	return result.data;
}
