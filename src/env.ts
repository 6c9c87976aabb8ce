import type { Logger } from "./lib/logger";

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
		caller: Caller;
	};
};
