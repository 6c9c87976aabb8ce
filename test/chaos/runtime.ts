// The local runtime under test: scripts/start.mjs (wrangler dev, workerd, local D1/R2/Durable Objects) through
// test/e2e/stack.ts, on one port and one persisted state directory, so that a hard restart (SIGKILL of start.mjs,
// wrangler and workerd, then a fresh start) finds the same database, bucket and Durable Objects.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type Stack, startStack } from "../e2e/stack";

export interface Restart {
	/** Jobs in flight (accepted, not yet terminal for their client) when the runtime was killed. */
	inFlight: number;
	/** From the kill until /healthz answered again. */
	downMs: number;
}

export class LocalRuntime {
	readonly restarts: Restart[] = [];
	#stack: Stack;
	/** The output of the runs killed so far. */
	#earlier = "";

	private constructor(
		stack: Stack,
		private readonly persistTo: string,
		private readonly vars: Record<string, string>,
	) {
		this.#stack = stack;
	}

	static async start(vars: Record<string, string>): Promise<LocalRuntime> {
		const persistTo = mkdtempSync(path.join(tmpdir(), "reelgate-chaos-"));
		const stack = await startStack({ persistTo, gpuWorker: false, vars, timeoutMs: 180_000 });
		return new LocalRuntime(stack, persistTo, vars);
	}

	get url(): string {
		return this.#stack.url;
	}

	get adminToken(): string {
		return this.#stack.adminToken;
	}

	/** SIGKILL to every process of the runtime (no graceful shutdown), then a start on the same port and state. */
	async restart(inFlight: number): Promise<Restart> {
		const killedAt = Date.now();
		this.#stack.kill();
		await this.#gone();
		this.#earlier += this.#stack.output();
		this.#stack = await startStack({
			port: Number(new URL(this.#stack.url).port),
			persistTo: this.persistTo,
			gpuWorker: false,
			vars: this.vars,
			timeoutMs: 180_000,
		});
		const restart = { inFlight, downMs: Date.now() - killedAt };
		this.restarts.push(restart);
		return restart;
	}

	/** Everything the runtime printed, over all its runs. */
	output(): string {
		return this.#earlier + this.#stack.output();
	}

	async stop(): Promise<void> {
		await this.#stack.stop();
		this.#stack.cleanup();
		rmSync(this.persistTo, { recursive: true, force: true });
	}

	/** Waits until no process of the killed runtime is left (the port is then free for the next start). */
	async #gone(): Promise<void> {
		for (let i = 0; i < 100 && this.#stack.survivors().length > 0; i++) {
			this.#stack.kill();
			await new Promise((r) => setTimeout(r, 100));
		}
	}
}
