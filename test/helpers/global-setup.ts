import type { TestProject } from "vitest/node";

/** Starts the Node-side test doubles (emulators) the Worker talks to over loopback. */
export default async function setup(_project: TestProject): Promise<() => Promise<void>> {
	return async () => {};
}
