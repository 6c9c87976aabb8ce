// The API reference at /docs in a real Chromium: operations, request examples, the clients' snippets and the
// schemas render from /openapi.json, with nothing loaded from another origin and nothing refused by the page's CSP.
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ROOT } from "../../scripts/lib/paths.mjs";
import { chromiumMissing, launchChromium } from "./chromium";

const ARTIFACTS = path.join(ROOT, "test-results", "browser");
const skipReason = chromiumMissing();

describe.skipIf(skipReason !== undefined)("the API reference", () => {
	const { url } = inject("reelgate");
	let browser: Browser;
	let page: Page;
	const problems: string[] = [];
	const elsewhere: string[] = [];

	beforeAll(async () => {
		mkdirSync(ARTIFACTS, { recursive: true });
		browser = await launchChromium();
		page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
		page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
		// A CSP refusal shows as a console error.
		page.on("console", (m) => {
			if (m.type() === "error") problems.push(`console: ${m.text()}`);
		});
		page.on("request", (r) => {
			const target = new URL(r.url());
			if (target.protocol.startsWith("http") && target.origin !== url) elsewhere.push(r.url());
		});
		await page.goto(`${url}/docs`);
		await page.getByRole("heading", { name: "Reelgate API" }).waitFor({ timeout: 30_000 });
	});
	afterAll(async () => {
		await browser?.close();
	});

	it("opens with what a first request needs: the key, the flow, the clients' one call, the errors", async () => {
		const intro = (await page.locator("main, body").first().textContent()) ?? "";
		for (const words of ["Authentication.", "The flow.", "In one call.", "Errors are RFC 9457 problems"]) {
			expect(intro, words).toContain(words);
		}
	});

	it("lists the public API first, with admin and internal routes in groups of their own", async () => {
		const sidebar = (await page.locator("aside, nav, [class*='sidebar']").first().textContent()) ?? "";
		const order = ["API", "Uploads", "Jobs", "Webhooks", "Administration", "Internal", "Schemas"].map((name) =>
			sidebar.indexOf(name),
		);
		expect(
			order.every((i) => i >= 0),
			sidebar,
		).toBe(true);
		expect([...order].sort((a, b) => a - b)).toEqual(order);
	});

	it("renders an operation with its request example as curl, and the SDK and Python snippets", async () => {
		// Operations render once their tag is opened, as a reader does from the sidebar.
		await page.getByRole("link", { name: "Jobs" }).first().click();
		const heading = page.getByRole("heading", { name: "Start a video job" });
		await heading.scrollIntoViewIfNeeded();
		await expect.poll(() => heading.isVisible()).toBe(true);
		const curl = page.locator("pre, code").filter({ hasText: "curl" }).filter({ hasText: "/v1/jobs" }).first();
		await expect.poll(() => curl.isVisible()).toBe(true);
		expect(await curl.textContent()).toContain('"model": "preview"');

		const clients = page.getByRole("button", { name: /Shell Curl/ }).first();
		await clients.click();
		await page.getByRole("option", { name: "TypeScript SDK" }).first().click();
		const ts = page.locator("pre, code").filter({ hasText: 'reelgate.run("preview"' }).first();
		await expect.poll(() => ts.isVisible()).toBe(true);
		await page.screenshot({ path: path.join(ARTIFACTS, "docs-operation.png") });

		await page
			.getByRole("button", { name: /TypeScript SDK/ })
			.first()
			.click();
		await page.getByRole("option", { name: "Python client" }).first().click();
		const py = page.locator("pre, code").filter({ hasText: 'client.run("preview"' }).first();
		await expect.poll(() => py.isVisible()).toBe(true);
	});

	it("renders the schemas", async () => {
		await page
			.getByRole("button", { name: /Schemas/ })
			.first()
			.click();
		const job = page.getByText("CreateJobRequest", { exact: true }).first();
		await expect.poll(() => job.count()).toBeGreaterThan(0);
		const problem = page.getByText("Problem", { exact: true }).first();
		await expect.poll(() => problem.count()).toBeGreaterThan(0);
	});

	it("loaded nothing from another origin, and the page's policy refused nothing", () => {
		expect(elsewhere).toEqual([]);
		expect(problems).toEqual([]);
	});
});
