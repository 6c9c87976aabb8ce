import { DurableObject } from "cloudflare:workers";

/** One job: its record, state machine and alarm loop (see the jobs issue). */
export class JobDO extends DurableObject<Env> {}
