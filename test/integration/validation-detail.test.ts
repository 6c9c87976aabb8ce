// A refused request names the field and the rule in its `detail`, and lists every field in `errors`.
import { beforeAll, describe, expect, it } from "vitest";
import { call, newAccount } from "../helpers/api";

let auth: Record<string, string>;

beforeAll(async () => {
	auth = await newAccount("validation");
});

interface Problem {
	status: number;
	code: string;
	detail: string;
	errors?: { path: string; message: string }[];
}

async function refusal(path: string, init: RequestInit = {}): Promise<Problem> {
	const res = await call(path, { headers: auth, ...init });
	expect(res.headers.get("content-type")).toBe("application/problem+json");
	expect(res.status).toBe(400);
	return (await res.json()) as Problem;
}

const postJob = (body: unknown) => refusal("/v1/jobs", { method: "POST", body: JSON.stringify(body) });

describe("validation problems", () => {
	it.each([
		[
			"a resolution off the grid",
			{ model: "preview", input: { image: "upl_x", resolution: "100x100" } },
			"input.resolution: each side must be a multiple of 16 between 64 and 1920.",
		],
		["a missing image", { model: "preview", input: {} }, "input.image: is required."],
		[
			"a number where text goes",
			{ model: "preview", input: { image: 5 } },
			"input.image: must be a string, not a number.",
		],
		[
			"a fractional fps",
			{ model: "preview", input: { image: "upl_x", fps: 2.5 } },
			"input.fps: must be a whole number.",
		],
		[
			"a prompt too long",
			{ model: "preview", input: { image: "upl_x", prompt: "x".repeat(2001) } },
			"input.prompt: must have at most 2000 characters.",
		],
		["a negative seed", { model: "preview", input: { image: "upl_x", seed: -1 } }, "input.seed: must be at least 0."],
		[
			"an unknown model",
			{ model: "sora", input: { image: "upl_x" } },
			'There is no model "sora"; the models are infinitetalk, preview, wan2.2-i2v, wan2.2-i2v-gguf, wan2.2-s2v.',
		],
		[
			"an unknown input field",
			{ model: "preview", input: { image: "upl_x", colour: "red" } },
			"input.colour: preview has no parameter colour; it takes prompt, negative_prompt, resolution, duration_s, fps, seed, steps.",
		],
		[
			"wan2.2-s2v without audio",
			{ model: "wan2.2-s2v", input: { image: "upl_x" } },
			"input.audio: is required by wan2.2-s2v.",
		],
	])("names the field and the rule for %s", async (_name, body, detail) => {
		const problem = await postJob(body);
		expect(problem.code).toBe("invalid_request");
		expect(problem.detail).toBe(detail);
		expect(problem.errors).toHaveLength(1);
	});

	it("lists every refused field in errors, and the first three in the detail", async () => {
		const problem = await postJob({
			model: "preview",
			input: { image: 1, duration_s: "3", fps: 0, steps: 500 },
			webhook: { url: "ftp://x.test" },
		});
		expect(problem.errors?.map((e) => e.path)).toEqual([
			"json.input.image",
			"json.input.duration_s",
			"json.input.fps",
			"json.input.steps",
			"json.webhook.url",
		]);
		expect(problem.detail).toBe(
			"input.image: must be a string, not a number; input.duration_s: must be a number, not a string; " +
				"input.fps: must be at least 1; and 2 more (see errors).",
		);
		expect(problem.errors?.at(-1)?.message).toBe("must be a URL");
	});

	it("names query parameters with where they were", async () => {
		const problem = await refusal("/v1/jobs?limit=0&status=done");
		expect(problem.detail).toBe(
			'query.status: must be one of "queued", "running", "succeeded", "failed", "canceled"; query.limit: must be at least 1.',
		);
	});

	it("keeps a schema's own wording", async () => {
		const problem = await refusal("/v1/uploads", {
			method: "POST",
			body: JSON.stringify({ filename: "a.png", content_type: "image/png", size: 10, sha256: "zz" }),
		});
		expect(problem.errors).toEqual([{ path: "json.sha256", message: "64 hex digits" }]);
		expect(problem.detail).toBe("sha256: 64 hex digits.");
	});

	it("refuses a missing body where the route requires one, instead of reading it as {}", async () => {
		const admin = { authorization: "Bearer test-admin-token" };
		for (const [path, method, headers] of [
			["/v1/admin/accounts/validation/limits", "PUT", admin],
			["/v1/jobs", "POST", auth],
			["/v1/admin/keys", "POST", admin],
		] as const) {
			const res = await call(path, { method, headers: { ...headers, "content-length": "0" } });
			expect(res.status, `${method} ${path}`).toBe(400);
			const problem = (await res.json()) as Problem;
			expect(problem.detail).toBe("the request body: is required: send it as JSON (Content-Type: application/json).");
			expect(problem.errors?.map((e) => e.path)).toEqual(["json"]);
		}
		// An empty object is a body: the limits route takes it (nothing changes).
		const empty = await call("/v1/admin/accounts/validation/limits", {
			method: "PUT",
			headers: { authorization: "Bearer test-admin-token", "content-type": "application/json" },
			body: "{}",
		});
		expect(empty.status).toBe(200);
	});
});
