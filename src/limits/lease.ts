/**
 * Tokens lent ahead: a key's gate (durable-objects/rate-limiter.ts) may take a few more tokens from the key's
 * `requests` bucket than the request in hand needs and lend them to the asking isolate, which then admits that
 * many more requests of the key itself, without a call, for at most LEASE_MS. A busy key then costs its gate one
 * call per lease instead of one per request.
 *
 * What stays exact: every admitted request spent a token the gate took from the bucket (and wrote through), so no
 * more than the quota ever gets through, restarts included; and the gate lends only while the bucket holds more
 * than half its quota, so a key near its limit is judged by the gate request by request. Within one isolate
 * requests wait for a lease being asked instead of asking for another, so a burst of N + k gets exactly N through.
 * What a lease costs: tokens an isolate does not spend before the lease ends are lost (at most what the bucket
 * refills in LEASE_MS), and another isolate learns of a revocation or a change of scopes or limits up to LEASE_MS
 * late. The isolate that revokes a key drops the key's lease at once (`forgetKeys`).
 */
import { setBounded } from "../lib/bounded-map";
import type { Scope } from "../schemas/keys";
import type { Admission } from "./admission";
import type { RateLimitDecision } from "./rate-limit";
import { type BucketPolicy, type BucketState, fullBucket, refill } from "./token-bucket";

/** How long lent tokens may be spent: the longest another isolate may admit a key after its revocation. */
export const LEASE_MS = 1_000;
/** At most this many tokens are lent at once, whatever the quota. */
export const MAX_LEASE_TOKENS = 100;
/** Leases kept per isolate (one per key; the oldest is dropped first). */
const MAX_LEASES = 1_000;

/**
 * How many tokens to lend with a charge to `state`: what the bucket refills in LEASE_MS (so a lease lost with its
 * isolate costs the key no more than that), capped, and none unless the bucket keeps more than half its quota
 * after the charge and the loan.
 */
export function tokensToLend(state: BucketState | null, policy: BucketPolicy, nowMs: number): number {
	const size = Math.min(MAX_LEASE_TOKENS, Math.floor((policy.quota * LEASE_MS) / policy.windowMs));
	if (size < 1) return 0;
	const tokens = refill(state ?? fullBucket(policy, nowMs), policy, nowMs).tokens;
	return tokens - 1 - size >= policy.quota / 2 ? size : 0;
}

type Admitted = Extract<Admission, { status: "ok" }>;

interface Lease {
	admitted: Admitted;
	/** Lent tokens not yet spent. */
	left: number;
	/** The `requests` bucket's whole tokens at the gate after the loan. */
	gateRemaining: number;
	/** When the lease ends (epoch ms). */
	until: number;
}

/** The admission of one more request on a lease: the gate's answer, its `RateLimit` figure counting the lease. */
function spentFrom(lease: Lease): Admitted {
	const decision: RateLimitDecision | null = lease.admitted.decision && {
		...lease.admitted.decision,
		buckets: lease.admitted.decision.buckets.map((b) =>
			b.name === "requests" ? { ...b, remaining: lease.gateRemaining + lease.left } : b,
		),
	};
	return { ...lease.admitted, decision, touch: false };
}

/**
 * One isolate's leases, by key hash. `admit` spends a lent token when one is left, else waits for a lease this
 * isolate is already asking for, else asks the gate (through `ask`) for the request and a lease.
 */
export class LeaseBook {
	readonly #leases = new Map<string, Lease>();
	/** Gate calls asking for a lease, by key hash: requests meanwhile wait for them instead of asking again. */
	readonly #asking = new Map<string, Promise<unknown>>();
	/** Moved on by `drop`: a lease asked for before it is not kept. */
	#epoch = 0;
	readonly #now: () => number;

	constructor(now: () => number = Date.now) {
		this.#now = now;
	}

	/**
	 * Admits a request of `keyHash` needing `scope`, charged to the `requests` bucket alone. `ask(lease)` is the
	 * gate's call; with `lease`, the gate may lend tokens (`Admission.lent`).
	 */
	async admit(keyHash: string, scope: Scope, ask: (lease: boolean) => Promise<Admission>): Promise<Admission> {
		const spent = this.#spend(keyHash, scope);
		if (spent) return spent;
		const asking = this.#asking.get(keyHash);
		if (asking) {
			await asking.catch(() => undefined);
			return this.#spend(keyHash, scope) ?? ask(false);
		}
		const epoch = this.#epoch;
		const answer = ask(true);
		this.#asking.set(keyHash, answer);
		try {
			const admission = await answer;
			return admission.status === "ok" && admission.lent && epoch === this.#epoch
				? this.#keep(keyHash, admission)
				: admission;
		} finally {
			if (this.#asking.get(keyHash) === answer) this.#asking.delete(keyHash);
		}
	}

	/** Forgets the leases of these keys (revoked, or their limits changed), and any lease still being asked for. */
	drop(keyHashes: string[]): void {
		this.#epoch += 1;
		for (const hash of keyHashes) this.#leases.delete(hash);
	}

	#spend(keyHash: string, scope: Scope): Admitted | null {
		const lease = this.#leases.get(keyHash);
		if (!lease) return null;
		if (lease.left < 1 || lease.until <= this.#now()) {
			this.#leases.delete(keyHash);
			return null;
		}
		// A scope the key lacks is the gate's to refuse.
		if (!lease.admitted.caller.scopes.includes(scope)) return null;
		lease.left -= 1;
		return spentFrom(lease);
	}

	/** Keeps a new loan (added to what is left of an earlier one) and answers the request that brought it. */
	#keep(keyHash: string, admitted: Admitted): Admitted {
		const earlier = this.#leases.get(keyHash);
		const left = (admitted.lent ?? 0) + (earlier && earlier.until > this.#now() ? earlier.left : 0);
		const gateRemaining = admitted.decision?.buckets.find((b) => b.name === "requests")?.remaining ?? 0;
		const lease: Lease = { admitted, left, gateRemaining, until: this.#now() + LEASE_MS };
		setBounded(this.#leases, keyHash, lease, MAX_LEASES);
		return { ...spentFrom(lease), touch: admitted.touch };
	}
}
