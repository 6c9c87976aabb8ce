// Starts the real local stack once for the browser, CLI and client tests (the e2e suite's helper, printing what
// `npm start` prints by default) and creates an API key.
import type { TestProject } from "vitest/node";
import { type Stack, startStack } from "../e2e/stack";

declare module "vitest" {
	export interface ProvidedContext {
		reelgate: {
			url: string;
			apiKey: string;
			adminToken: string;
			/** The stack's record of where it runs (REELGATE_LOCAL_FILE for the tools). */
			localFile: string;
			/** What `npm start` printed up to its banner. */
			startOutput: string;
		};
	}
}

export default async function setup(project: TestProject) {
	const stack: Stack = await startStack({ quiet: true });
	try {
		const res = await fetch(`${stack.url}/v1/admin/keys`, {
			method: "POST",
			headers: { authorization: `Bearer ${stack.adminToken}`, "content-type": "application/json" },
			body: JSON.stringify({ name: "browser-tests" }),
		});
		if (res.status !== 201) throw new Error(`creating an API key: ${res.status} ${await res.text()}`);
		const { key } = (await res.json()) as { key: string };
		project.provide("reelgate", {
			url: stack.url,
			apiKey: key,
			adminToken: stack.adminToken,
			localFile: stack.localFile,
			startOutput: stack.output(),
		});
	} catch (err) {
		await stack.stop();
		stack.cleanup();
		throw err;
	}
	return async () => {
		await stack.stop();
		stack.cleanup();
	};
}
