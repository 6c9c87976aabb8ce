import type { TestProject } from "vitest/node";
import { startComfyEmulator } from "../emulators/comfyui/server";
import { startPodEmulator } from "../emulators/pod/server";
import { startRunpodEmulator } from "../emulators/runpod/server";
import { startVastEmulator } from "../emulators/vastai/server";
import { startWebhookReceiver } from "../emulators/webhook-receiver/server";

declare module "vitest" {
	export interface ProvidedContext {
		/** The pod-mode GPU worker emulator (test/emulators/pod/server.ts): base URL and bearer token. */
		podEmulator: { url: string; token: string };
		/** The RunPod Serverless emulator (test/emulators/runpod/server.ts): `base_url`, key, endpoint id. */
		runpodEmulator: { url: string; apiKey: string; endpointId: string };
		/** The ComfyUI HTTP emulator (test/emulators/comfyui/server.ts): base URL and bearer token. */
		comfyEmulator: { url: string; token: string };
		/** The vast.ai REST emulator (test/emulators/vastai/server.ts), whose instances serve the ComfyUI emulator. */
		vastEmulator: { url: string; apiKey: string };
		/** The webhook receiver (test/emulators/webhook-receiver/server.ts): base URL. */
		webhookReceiver: { url: string };
	}
}

/** Starts the Node-side test doubles (emulators) the Worker talks to over loopback. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
	const pod = await startPodEmulator({ token: "pod-emulator-token" });
	project.provide("podEmulator", { url: pod.url, token: pod.token });
	const runpod = await startRunpodEmulator({ apiKey: "rp-emulator-key", endpointId: "ep-emulator" });
	project.provide("runpodEmulator", { url: runpod.url, apiKey: runpod.apiKey, endpointId: runpod.endpointId });
	const receiver = await startWebhookReceiver();
	project.provide("webhookReceiver", { url: receiver.url });
	const comfy = await startComfyEmulator({ token: "comfy-emulator-token" });
	project.provide("comfyEmulator", { url: comfy.url, token: comfy.token });
	const vast = await startVastEmulator({
		comfyPort: Number(new URL(comfy.url).port),
		addComfyToken: (t, o) => comfy.addToken(t, o),
	});
	project.provide("vastEmulator", { url: vast.url, apiKey: vast.apiKey });
	return async () => {
		await vast.close();
		await comfy.close();
		await receiver.close();
		await runpod.close();
		await pod.close();
	};
}
