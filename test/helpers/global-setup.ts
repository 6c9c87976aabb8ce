import type { TestProject } from "vitest/node";
import { startPodEmulator } from "../emulators/pod/server";

declare module "vitest" {
	export interface ProvidedContext {
		/** The pod-mode GPU worker emulator (test/emulators/pod/server.ts): base URL and bearer token. */
		podEmulator: { url: string; token: string };
	}
}

/** Starts the Node-side test doubles (emulators) the Worker talks to over loopback. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
	const pod = await startPodEmulator({ token: "pod-emulator-token" });
	project.provide("podEmulator", { url: pod.url, token: pod.token });
	return async () => {
		await pod.close();
	};
}
