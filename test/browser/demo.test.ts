// The demo page at `/`, driven in a real Chromium as a person would use it: the key checked when saved, the form
// built from the model catalog, errors said at their field in words, a preview job watched live and played from its
// share link, recent jobs live with their poster frames, cancel and share; at desktop and at phone width.
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ROOT } from "../../scripts/lib/paths.mjs";
import { makePng, makeWav } from "../e2e/media";
import { chromiumMissing, launchChromium } from "./chromium";

// The callbacks given to page.evaluate run in Chromium, not Node. lib.dom would clash with Node's types across the
// whole Node-side program (tsconfig.node.json), so the page-side names they use are declared here, module-local,
// only as far as used.
interface PageElement {
	readonly id: string;
	readonly tagName: string;
	readonly textContent: string | null;
	getAttribute(name: string): string | null;
	getBoundingClientRect(): { readonly right: number };
}
interface HTMLElement extends PageElement {
	readonly offsetParent: PageElement | null;
}
interface HTMLVideoElement extends HTMLElement {
	readonly readyState: number;
	readonly duration: number;
	readonly videoWidth: number;
	readonly videoHeight: number;
	readonly currentSrc: string;
}
interface HTMLInputElement extends HTMLElement {
	readonly labels: { readonly length: number } | null;
}
interface HTMLProgressElement extends HTMLElement {
	readonly value: number;
	readonly hidden: boolean;
}
declare const navigator: { readonly clipboard: { readText(): Promise<string> } };
declare const document: {
	readonly documentElement: { readonly clientWidth: number; readonly scrollWidth: number };
	readonly activeElement: PageElement | null;
	readonly body: PageElement;
	querySelector(selectors: string): HTMLVideoElement | null;
	querySelectorAll(selectors: string): Iterable<PageElement>;
};

const ARTIFACTS = path.join(ROOT, "test-results", "browser");
/** The first API calls of a fresh stack can take a few seconds (local D1 warming up). */
const POLL = { timeout: 15_000, interval: 100 };
const skipReason = chromiumMissing();
if (skipReason) console.warn(`Skipping the browser tests: ${skipReason}.`);

/** Saves the key as a person does, and waits for the page to say whose it is (or that it was refused). */
async function saveKey(page: Page, key: string) {
	await page.getByLabel("Your API key").fill(key);
	await page.getByRole("button", { name: "Save key" }).click();
	await expect.poll(() => page.locator("#key-state").getAttribute("data-kind"), POLL).toMatch(/^(ok|error)$/);
}

/** Requests of the page to `pathname` (a RegExp over the path), as "METHOD path". */
function recordRequests(page: Page, pathname: RegExp): string[] {
	const seen: string[] = [];
	page.on("request", (r) => {
		const p = new URL(r.url()).pathname;
		if (pathname.test(p)) seen.push(`${r.method()} ${p}`);
	});
	return seen;
}

/** The text of the job's live region and its state, read together, until the job is terminal. */
async function statusesUntilDone(page: Page, timeoutMs = 120_000): Promise<string[]> {
	const seen: string[] = [];
	const status = page.locator("#job-status");
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const { text, state } = await status.evaluate((e) => ({
			text: e.textContent ?? "",
			state: e.getAttribute("data-status"),
		}));
		if (text && seen.at(-1) !== text) seen.push(text);
		if (state === "succeeded" || state === "failed" || state === "canceled") return seen;
		if (Date.now() > deadline) throw new Error(`no terminal status within ${timeoutMs} ms; saw: ${seen.join(" | ")}`);
		await page.waitForTimeout(100);
	}
}

async function videoPlays(page: Page, selector = "#video") {
	await page.waitForFunction(
		(s) => {
			const v = document.querySelector(s);
			return v !== null && v.readyState >= 2 && v.duration > 0;
		},
		selector,
		{ timeout: 30_000 },
	);
	return page.evaluate((s) => {
		const v = document.querySelector(s) as HTMLVideoElement;
		return { duration: v.duration, width: v.videoWidth, src: v.currentSrc };
	}, selector);
}

/** Elements sticking out of the viewport horizontally, as [element, right edge] pairs. */
function horizontalOverflow(page: Page) {
	return page.evaluate(() => {
		const width = document.documentElement.clientWidth;
		const over = [...document.querySelectorAll("body *")]
			.filter((e) => (e as HTMLElement).offsetParent !== null)
			.map((e) => [e.tagName + (e.id ? `#${e.id}` : ""), Math.round(e.getBoundingClientRect().right)] as const)
			.filter(([, right]) => right > width + 1);
		return { scrollWidth: document.documentElement.scrollWidth, width, over };
	});
}

/** A full-page screenshot, and its width in pixels (a PNG's IHDR): wider than the viewport means overflow. */
async function screenshotWidth(page: Page, file: string): Promise<number> {
	const png = await page.screenshot({ path: path.join(ARTIFACTS, file), fullPage: true });
	return png.readUInt32BE(16);
}

const pageText = (page: Page) => page.evaluate(() => document.body.textContent ?? "");

describe.skipIf(skipReason !== undefined)("the demo page", () => {
	const { url, apiKey } = inject("reelgate");
	let browser: Browser;
	let desktop: BrowserContext;
	let jobId = "";

	beforeAll(async () => {
		mkdirSync(ARTIFACTS, { recursive: true });
		browser = await launchChromium();
		desktop = await browser.newContext({ viewport: { width: 1280, height: 900 } });
		await desktop.grantPermissions(["clipboard-read", "clipboard-write"], { origin: url });
	});
	afterAll(async () => {
		await browser?.close();
	});

	it("has landmarks, a label for every control, and a skip link first in the tab order", async () => {
		const page = await desktop.newPage();
		await page.goto(`${url}/`);
		await saveKey(page, apiKey);
		await expect.poll(() => page.getByLabel(/^Image/).count(), POLL).toBe(1);
		for (const role of ["banner", "main", "contentinfo"] as const) {
			expect(await page.getByRole(role).count(), role).toBe(1);
		}
		const unlabelled = await page.evaluate(() =>
			[...document.querySelectorAll("input, select, textarea")]
				.filter((e) => !(e as HTMLInputElement).labels?.length && !e.getAttribute("aria-label"))
				.map((e) => e.id),
		);
		expect(unlabelled).toEqual([]);
		await page.reload();
		await page.keyboard.press("Tab");
		expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Skip to the form");
		await page.close();
	});

	it("checks a key when it is saved: a refused one is said at the field and not kept", async () => {
		const page = await desktop.newPage();
		await page.goto(`${url}/`);
		await page.evaluate(() => localStorage.clear());
		await saveKey(page, "rg_not_a_real_key");
		const state = page.locator("#key-state");
		expect(await state.textContent()).toMatch(/^This key was refused: .{10,}/);
		expect(await page.getByLabel("Your API key").getAttribute("aria-invalid")).toBe("true");
		expect(await page.evaluate(() => localStorage.getItem("reelgate.apiKey"))).toBeNull();
		await page.close();
	});

	it("says whose a saved key is, and offers the catalog's models, the unavailable ones disabled with the reason", async () => {
		const page = await desktop.newPage();
		await page.goto(`${url}/`);
		await saveKey(page, apiKey);
		expect(await page.locator("#key-state").textContent()).toMatch(/^Key “browser-tests” of account acct_\w+: /);
		expect(await page.evaluate(() => localStorage.getItem("reelgate.apiKey"))).toBe(apiKey);
		// The catalog arrives after the key's check: one option per model the API lists.
		const catalog = (await (
			await fetch(`${url}/v1/models`, { headers: { authorization: `Bearer ${apiKey}` } })
		).json()) as { data: { id: string }[] };
		expect(catalog.data.length).toBeGreaterThan(3);
		await expect.poll(() => page.locator("#model option").count(), POLL).toBe(catalog.data.length);
		const options = await page
			.locator("#model option")
			.evaluateAll((os) => os.map((o) => ({ text: o.textContent, disabled: o.hasAttribute("disabled") })));
		expect(options[0]).toEqual({ text: "Preview (CPU)", disabled: false });
		// Only the CPU preview runs on the local stack: every GPU model is offered disabled, with the reason.
		const gpu = options.slice(1);
		expect(gpu.filter((o) => o.text?.startsWith("Wan 2.2")).length).toBe(3);
		expect(gpu.every((o) => o.disabled && o.text?.endsWith("(unavailable)"))).toBe(true);
		expect(await page.locator("#model-note").textContent()).toMatch(/^Not available now: .+: .+/);
		// The parameters come from the model's schema: range and default.
		const duration = page.getByLabel("Duration (seconds)");
		expect([await duration.getAttribute("min"), await duration.getAttribute("max")]).toEqual(["0.5", "60"]);
		expect(await page.getByLabel("Frames per second").inputValue()).toBe("24");
		await page.getByRole("button", { name: "Forget key" }).click();
		expect(await page.evaluate(() => localStorage.getItem("reelgate.apiKey"))).toBeNull();
		await page.close();
	});

	it("says a value out of range at its field before uploading anything", async () => {
		const page = await desktop.newPage();
		const uploads = recordRequests(page, /^\/v1\/uploads/);
		await page.goto(`${url}/`);
		await saveKey(page, apiKey);
		await page
			.getByLabel(/^Image/)
			.setInputFiles({ name: "still.png", mimeType: "image/png", buffer: makePng(32, 32) });
		await page.getByLabel("Frames per second").fill("0");
		await page.getByRole("button", { name: "Upload and generate" }).click();
		const error = page.locator("#param-fps-error");
		await expect.poll(() => error.isVisible(), POLL).toBe(true);
		expect(await error.textContent()).toBe("Frames per second must be from 1 to 60.");
		expect(await page.evaluate(() => document.activeElement?.id)).toBe("param-fps");
		expect(uploads).toEqual([]);
		await page.close();
	});

	it("says the API's refusal at the field it names, in words", async () => {
		const page = await desktop.newPage();
		await page.goto(`${url}/`);
		await saveKey(page, apiKey);
		await page
			.getByLabel(/^Image/)
			.setInputFiles({ name: "still.png", mimeType: "image/png", buffer: makePng(32, 32) });
		// Past the browser's own check (as an older page would be): the API's answer names the field.
		await page.getByLabel("Frames per second").evaluate((e) => e.removeAttribute("min"));
		await page.getByLabel("Frames per second").fill("0");
		await page.getByRole("button", { name: "Upload and generate" }).click();
		const error = page.locator("#param-fps-error");
		await expect.poll(() => error.isVisible(), POLL).toBe(true);
		expect(await error.textContent()).toBe("Frames per second must be at least 1.");
		expect(await page.getByRole("alert").filter({ hasText: "Check" }).textContent()).toBe("Check frames per second.");
		expect(await pageText(page)).not.toMatch(/json\.|input\.fps|upl_/);
		await page.close();
	});

	it("resets a refused upload's progress bar and says why at its picker", async () => {
		const page = await desktop.newPage();
		await page.goto(`${url}/`);
		await saveKey(page, apiKey);
		const notPng = Buffer.from("these bytes are not a PNG at all");
		await page.getByLabel(/^Image/).setInputFiles({ name: "still.png", mimeType: "image/png", buffer: notPng });
		await page.getByRole("button", { name: "Upload and generate" }).click();
		const error = page.locator("#input-image-error");
		await expect.poll(() => error.isVisible(), POLL).toBe(true);
		expect(await error.textContent()).toMatch(/^Image was refused: .*image\/png/);
		const bar = await page.locator("#input-image-progress").evaluate((e) => ({
			value: (e as HTMLProgressElement).value,
			hidden: (e as HTMLProgressElement).hidden,
		}));
		expect(bar).toEqual({ value: 0, hidden: true });
		expect(await pageText(page)).not.toMatch(/upl_|json\./);
		await page.close();
	});

	it("uploads an image and audio, watches the job live, and plays the video from its share link", async () => {
		const page = await desktop.newPage();
		const pageErrors: string[] = [];
		page.on("pageerror", (e) => pageErrors.push(e.message));
		const streams = recordRequests(page, /^\/v1\/jobs\/job_[a-z0-9]+\/events$/);
		const polls = recordRequests(page, /^\/v1\/jobs\/job_[a-z0-9]+$/);
		await page.goto(`${url}/`);
		await saveKey(page, apiKey);
		await page
			.getByLabel(/^Image/)
			.setInputFiles({ name: "still.png", mimeType: "image/png", buffer: makePng(96, 64) });
		await page.getByLabel(/^Audio/).setInputFiles({ name: "tone.wav", mimeType: "audio/wav", buffer: makeWav(1) });
		await page.getByLabel("Prompt", { exact: true }).fill("a slow pan across a gradient");
		await page.getByLabel("Duration (seconds)").fill("1");
		// Keyboard only: focus the submit button and press Enter.
		await page.getByRole("button", { name: "Upload and generate" }).focus();
		await page.keyboard.press("Enter");

		const seen = await statusesUntilDone(page);
		expect(await page.locator("#job-status").getAttribute("data-status"), seen.join(" | ")).toBe("succeeded");
		expect(seen[0]).toMatch(/^(Queued|Running)/);
		expect(seen.at(-1)).toMatch(/^Succeeded/);
		expect(await page.locator("#job-status").getAttribute("aria-live")).toBe("polite");
		for (const bar of ["#input-image-progress", "#input-audio-progress"]) {
			expect(await page.locator(bar).evaluate((e) => (e as HTMLProgressElement).value)).toBe(100);
		}
		expect(await page.locator("#job-took").textContent()).toMatch(/^\d+\.\d s$/);
		expect(await page.locator("#job-cost").textContent()).toMatch(/^\$\d+\.\d{4} \(/);

		const video = await videoPlays(page);
		expect(video.duration).toBeGreaterThan(0);
		expect(video.width).toBeGreaterThan(0);
		// Played from the share link, not a downloaded blob.
		expect(video.src).toMatch(new RegExp(`^${url}/v1/share/job_\\w+/video\\.mp4\\?`));
		jobId = /job_\w+/.exec(video.src)?.[0] ?? "";

		await page.getByRole("button", { name: "Copy the share link", exact: true }).click();
		await expect.poll(() => page.locator("#share-state").textContent(), POLL).toMatch(/^Share link copied/);
		expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(video.src);

		// The recent list: created time, duration, cost, and a poster frame from the video itself.
		const card = page.locator(`#recent li[data-job-id="${jobId}"]`);
		await expect.poll(() => card.getAttribute("data-status"), POLL).toBe("succeeded");
		expect(await card.locator(".hint").textContent()).toMatch(/ · took \d+\.\d s · cost \$\d+\.\d{4}/);
		await page.waitForFunction(
			(id) => {
				const v = document.querySelector(`#recent li[data-job-id="${id}"] .poster video`);
				return v !== null && v.readyState >= 1 && v.videoWidth > 0;
			},
			jobId,
			{ timeout: 30_000 },
		);
		expect(await screenshotWidth(page, "demo-desktop.png")).toBe(1280);
		// With a working event stream the page reads the job's updates from it alone, without polling.
		expect(streams.length).toBeGreaterThan(0);
		expect(polls).toEqual([]);
		expect(pageErrors).toEqual([]);
		await page.close();
	});

	it("keeps a running job live in the recent list, and cancels it from there", async () => {
		const page = await desktop.newPage();
		await page.goto(`${url}/`);
		await saveKey(page, apiKey);
		await page.getByLabel(/^Image/).setInputFiles({ name: "long.png", mimeType: "image/png", buffer: makePng(64, 64) });
		// A minute of video: long enough on the CPU to be caught running.
		await page.getByLabel("Duration (seconds)").fill("60");
		await page.getByRole("button", { name: "Upload and generate" }).click();
		await expect.poll(() => page.locator("#job-status").getAttribute("data-status"), POLL).toMatch(/queued|running/);
		const card = page.locator("#recent li").first();
		// The card follows the job by itself, no Refresh.
		await expect.poll(() => card.getAttribute("data-status"), { timeout: 60_000, interval: 100 }).toBe("running");
		expect(await card.locator(".status-badge").textContent()).toMatch(/^Running: \d+%/);
		await card.getByRole("button", { name: /^Cancel the preview job of / }).click();
		await expect.poll(() => card.getAttribute("data-status"), POLL).toBe("canceled");
		await expect.poll(() => page.locator("#job-status").textContent(), POLL).toBe("Canceled.");
		await page.close();
	});

	it("fits a 390×844 phone screen without horizontal overflow, and replays a recent job there", async () => {
		expect(jobId, "needs the job of the test above").not.toBe("");
		const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
		const page = await context.newPage();
		await page.goto(`${url}/`);
		expect(await horizontalOverflow(page)).toMatchObject({ over: [] });
		await saveKey(page, apiKey);
		await page
			.locator(`#recent li[data-job-id="${jobId}"]`)
			.getByRole("button", { name: /^Show / })
			.click();
		await videoPlays(page);
		const layout = await horizontalOverflow(page);
		expect(layout.over).toEqual([]);
		expect(layout.scrollWidth).toBeLessThanOrEqual(layout.width);
		expect(await screenshotWidth(page, "demo-phone.png")).toBe(390);
		await context.close();
	});
});
