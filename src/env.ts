import type { Config } from "./config";
import type { Logger } from "./lib/logger";
import type { EffectiveLimits } from "./limits/config";
import type { RateLimitDecision } from "./limits/rate-limit";

/** Who is calling: set by the API-key middleware. */
export interface Caller {
	keyId: string;
	accountId: string;
	scopes: Scope[];
}

export type Scope = "jobs:read" | "jobs:write";
export const ALL_SCOPES: Scope[] = ["jobs:read", "jobs:write"];

/** The one typed context of every route. `Env` comes from `wrangler types`. */
export type AppEnv = {
	Bindings: Env;
	Variables: {
		requestId: string;
		log: Logger;
		/** The Worker's vars, parsed (src/config.ts). */
		config: Config;
		caller: Caller;
		/** The caller's account limits (set with `caller`). */
		limits: EffectiveLimits;
		/** This request's charge to the key's rate-limit buckets; null when the limiter could not be reached. */
		rateLimit: RateLimitDecision | null;
	};
};
