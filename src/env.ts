import type { Config } from "./config";
import type { Logger } from "./lib/logger";
import type { Caller } from "./limits/admission";
import type { EffectiveLimits } from "./limits/config";
import type { RateLimitDecision } from "./limits/rate-limit";

/** The one typed context of every route. `Env` comes from `wrangler types`. */
export type AppEnv = {
	Bindings: Env;
	Variables: {
		requestId: string;
		log: Logger;
		/** The Worker's vars, parsed (src/config/). */
		config: Config;
		caller: Caller;
		/** The caller's account limits (set with `caller`). */
		limits: EffectiveLimits;
		/** This request's charge to the key's rate-limit buckets; null when the limiter could not be reached. */
		rateLimit: RateLimitDecision | null;
	};
};
