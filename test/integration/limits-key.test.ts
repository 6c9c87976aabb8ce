// GET /v1/limits says whose key made the request, so a client can show it when the key is saved.
import { expect, it } from "vitest";
import { call, newAccount } from "../helpers/api";

it("names the key, its account and its scopes", async () => {
	const auth = await newAccount("whose");
	const res = await call("/v1/limits", { headers: auth });
	expect(res.status).toBe(200);
	const view = (await res.json()) as { account: string; key: { id: string; name: string; scopes: string[] } };
	expect(view.account).toBe("whose");
	expect(view.key).toEqual({
		id: expect.stringMatching(/^key_/),
		name: "test-whose",
		scopes: ["jobs:read", "jobs:write"],
	});
});
