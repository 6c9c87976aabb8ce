import type { Config } from "./config";
import type { Logger } from "./lib/logger";
import type { Caller } from "./limits/admission";
import type { EffectiveLimits } from "./limits/config";
import type { RateLimitDecision } from "./limits/rate-limit";

/**
 * The one typed context of every route. `Env` comes from `wrangler types`. Routes read the variables with
 * `c.get(name)`: Hono's `c.var` builds a new object of every variable on each access, which the status read paid
 * several times per request.
 */
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
		/**
		 * Routes behind `requireKeyAlongside` only: settles once the key's gate has admitted the request (`caller` is
		 * set then) or rejects with its problem; `callerHint` is who this key was lately, to start work beside it.
		 */
		admitted: Promise<void>;
		callerHint: Caller | null;
	};
};
