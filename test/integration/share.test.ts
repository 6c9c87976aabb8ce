import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { getAccountSecrets } from "../../src/db/account-secrets";
import { signShareUrl } from "../../src/share/links";
import { call, newAccount, ORIGIN } from "../helpers/api";
import { runToSuccess, startJob } from "../helpers/notify";

let auth: Record<string, string>;
let jobId: string;
let size: number;
beforeAll(async () => {
	auth = await newAccount("share");
	jobId = await startJob(auth, "pod-share");
	const done = await runToSuccess(jobId);
	size = done.output?.video.size ?? 0;
});

async function share(body?: unknown, headers = auth): Promise<Response> {
	return call(`/v1/jobs/${jobId}/share`, {
		method: "POST",
		headers,
		body: body === undefined ? undefined : JSON.stringify(body),
	});
}

/** A share URL fetched with no credentials at all, as a `<video>` tag would. */
const anonymous = (url: string, headers: Record<string, string> = {}, method = "GET") => call(url, { method, headers });

async function expectDenied(res: Response): Promise<void> {
	expect(res.status).toBe(403);
	expect(res.headers.get("content-type")).toBe("application/problem+json");
	expect(((await res.json()) as { code: string }).code).toBe("forbidden");
}

describe("share links", () => {
	it("a succeeded job carries a 24 h share_url that plays without auth, whole, by range and with HEAD", async () => {
		const view = (await (await call(`/v1/jobs/${jobId}`, { headers: auth })).json()) as { share_url: string };
		expect(view.share_url).toMatch(new RegExp(`^${ORIGIN}/v1/share/${jobId}/video\\.mp4\\?exp=\\d+&sig=`));
		const exp = Number(new URL(view.share_url).searchParams.get("exp"));
		expect(exp * 1000 - Date.now()).toBeGreaterThan(23.9 * 3600_000);

		const whole = await anonymous(view.share_url);
		expect(whole.status).toBe(200);
		expect(whole.headers.get("content-type")).toBe("video/mp4");
		expect(whole.headers.get("accept-ranges")).toBe("bytes");
		expect((await whole.arrayBuffer()).byteLength).toBe(size);

		const part = await anonymous(view.share_url, { range: "bytes=0-1" });
		expect(part.status).toBe(206);
		expect(part.headers.get("content-range")).toBe(`bytes 0-1/${size}`);
		expect((await part.arrayBuffer()).byteLength).toBe(2);

		const head = await anonymous(view.share_url, {}, "HEAD");
		expect(head.status).toBe(200);
		expect(head.headers.get("content-length")).toBe(String(size));

		const etag = whole.headers.get("etag") ?? "";
		expect((await anonymous(view.share_url, { "if-none-match": etag })).status).toBe(304);
		expect((await anonymous(view.share_url, { range: `bytes=${size + 10}-` })).status).toBe(416);

		const list = (await (await call("/v1/jobs", { headers: auth })).json()) as { data: { share_url?: string }[] };
		expect(list.data[0]?.share_url).toMatch(/\/v1\/share\//);
	});

	it("POST /v1/jobs/{id}/share makes a link of the asked lifetime", async () => {
		const res = await share({ expires_in_s: 600 });
		expect(res.status).toBe(200);
		const link = (await res.json()) as { url: string; expires_at: string };
		const ttl = Date.parse(link.expires_at) - Date.now();
		expect(ttl).toBeGreaterThan(590_000);
		expect(ttl).toBeLessThanOrEqual(600_000);
		expect((await anonymous(link.url)).status).toBe(200);
		const byDefault = (await (await share()).json()) as { expires_at: string };
		expect(Date.parse(byDefault.expires_at) - Date.now()).toBeGreaterThan(23.9 * 3600_000);
	});

	it.each([[10], [604801], ["60"]])("refuses expires_in_s %j with 400", async (value) => {
		const res = await share({ expires_in_s: value });
		expect(res.status).toBe(400);
	});

	it("refuses tampered and expired links with 403", async () => {
		const { url } = (await (await share({ expires_in_s: 600 })).json()) as { url: string };
		const u = new URL(url);
		const sig = u.searchParams.get("sig") ?? "";
		const flipped = new URL(url);
		flipped.searchParams.set("sig", `${sig.slice(0, -2)}${sig.endsWith("A") ? "BB" : "AA"}`);
		await expectDenied(await anonymous(flipped.toString()));
		const later = new URL(url);
		later.searchParams.set("exp", String(Number(u.searchParams.get("exp")) + 3600));
		await expectDenied(await anonymous(later.toString()));
		await expectDenied(await anonymous(`${ORIGIN}${u.pathname}`));
		await expectDenied(await anonymous(url.replace(jobId, "job_00000000000000000000")));

		const { share: secret } = await getAccountSecrets(env, "share");
		const expired = await signShareUrl(secret, ORIGIN, jobId, Math.floor(Date.now() / 1000) - 5);
		const res = await anonymous(expired);
		expect(res.status).toBe(403);
		expect(((await res.json()) as { detail: string }).detail).toMatch(/expired/);
	});

	it("is 409 before success and 404 for another account's job", async () => {
		const pending = await startJob(auth, "pod-share");
		const res = await call(`/v1/jobs/${pending}/share`, { method: "POST", headers: auth });
		expect(res.status).toBe(409);
		expect(((await res.json()) as { code: string }).code).toBe("not_ready");
		expect((await share(undefined, await newAccount("share-other"))).status).toBe(404);
	});

	it("rotating the share secret revokes every outstanding link at once", async () => {
		const { url } = (await (await share()).json()) as { url: string };
		expect((await anonymous(url)).status).toBe(200);
		const rotated = await call("/v1/share/secret/rotate", { method: "POST", headers: auth });
		expect(rotated.status).toBe(200);
		await expectDenied(await anonymous(url));
		const { url: fresh } = (await (await share()).json()) as { url: string };
		expect((await anonymous(fresh)).status).toBe(200);
	});
});
