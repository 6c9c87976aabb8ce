// The demo page at `/`, driven in a real Chromium: key, uploads, a preview job watched live, the video playing.
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { Browser, Page } from "playwright-core";
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
}
interface HTMLInputElement extends HTMLElement {
	readonly labels: { readonly length: number } | null;
}
interface HTMLProgressElement extends HTMLElement {
	readonly value: number;
}
declare const document: {
	readonly documentElement: { readonly clientWidth: number; readonly scrollWidth: number };
	readonly activeElement: PageElement | null;
	querySelector(selectors: "video"): HTMLVideoElement | null;
	querySelectorAll(selectors: string): Iterable<PageElement>;
};

const ARTIFACTS = path.join(ROOT, "test-results", "browser");
/** The first API calls of a fresh stack can take a few seconds (local D1 warming up). */
const POLL = { timeout: 15_000, interval: 100 };
const skipReason = chromiumMissing();
if (skipReason) console.warn(`Skipping the browser tests: ${skipReason}.`);

/** Playwright's selectors for the page's own accessible names: the test uses the page as a person would. */
async function saveKey(page: Page, key: string) {
	await page.getByLabel("Your API key").fill(key);
	await page.getByRole("button", { name: "Save key" }).click();
	await expect.poll(() => page.evaluate(() => localStorage.getItem("reelgate.apiKey"))).toBe(key);
}

async function videoPlays(page: Page) {
	await page.waitForFunction(
		() => {
			const v = document.querySelector("video");
			return v !== null && v.readyState >= 2 && v.duration > 0;
		},
		undefined,
		{ timeout: 30_000 },
	);
	return page.evaluate(() => {
		const v = document.querySelector("video") as HTMLVideoElement;
		return { readyState: v.readyState, duration: v.duration, width: v.videoWidth, height: v.videoHeight };
	});
}

/** Widths that overflow the viewport horizontally, as [element, right edge] pairs. */
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

describe.skipIf(skipReason !== undefined)("the demo page", () => {
	const { url, apiKey } = inject("reelgate");
	let browser: Browser;
	let jobId = "";

	beforeAll(async () => {
		mkdirSync(ARTIFACTS, { recursive: true });
		browser = await launchChromium();
	});
	afterAll(async () => {
		await browser?.close();
	});

	it("has landmarks, a label for every control, and a skip link first in the tab order", async () => {
		const page = await browser.newPage();
		await page.goto(`${url}/`);
		await expect.poll(() => page.title()).toContain("Reelgate");
		for (const role of ["banner", "main", "contentinfo"] as const) {
			expect(await page.getByRole(role).count(), role).toBe(1);
		}
		const unlabelled = await page.evaluate(() =>
			[...document.querySelectorAll("input, select, textarea")]
				.filter((e) => !(e as HTMLInputElement).labels?.length && !e.getAttribute("aria-label"))
				.map((e) => e.id),
		);
		expect(unlabelled).toEqual([]);
		await page.keyboard.press("Tab");
		expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Skip to the form");
		await page.close();
	});

	it("shows the problem's detail when the key is refused", async () => {
		const page = await browser.newPage();
		await page.goto(`${url}/`);
		await saveKey(page, "rg_not_a_real_key");
		const alert = page.getByRole("alert");
		await expect.poll(() => alert.isVisible(), POLL).toBe(true);
		expect((await alert.textContent())?.length).toBeGreaterThan(5);
		await page.getByRole("button", { name: "Forget key" }).click();
		expect(await page.evaluate(() => localStorage.getItem("reelgate.apiKey"))).toBeNull();
		expect(await page.getByLabel("Your API key").inputValue()).toBe("");
		await page.close();
	});

	it("uploads an image and audio, watches the job live, and plays the video", async () => {
		const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
		const pageErrors: string[] = [];
		page.on("pageerror", (e) => pageErrors.push(e.message));
		// How the page followed the job: the event stream, or polling when the stream is unavailable.
		const streams: number[] = [];
		const polls: string[] = [];
		page.on("response", (r) => {
			const p = new URL(r.url()).pathname;
			if (/^\/v1\/jobs\/job_[a-z0-9]+\/events$/.test(p)) streams.push(r.status());
			else if (r.request().method() === "GET" && /^\/v1\/jobs\/job_[a-z0-9]+$/.test(p)) polls.push(p);
		});
		await page.goto(`${url}/`);
		await saveKey(page, apiKey);

		await page
			.getByLabel(/^Image/)
			.setInputFiles({ name: "still.png", mimeType: "image/png", buffer: makePng(96, 64) });
		await page.getByLabel(/^Audio/).setInputFiles({ name: "tone.wav", mimeType: "audio/wav", buffer: makeWav(1) });
		await page.getByLabel("Prompt").fill("a slow pan across a gradient");
		await page.getByLabel("Model").selectOption("preview");
		await page.getByLabel("Duration (seconds)").fill("1");
		// Keyboard only: focus the submit button and press Enter.
		await page.getByRole("button", { name: "Upload and generate" }).focus();
		await page.keyboard.press("Enter");

		// Every status text the live region shows, in order, until the job is terminal.
		const seen: string[] = [];
		const status = page.locator("#job-status");
		const deadline = Date.now() + 180_000;
		for (;;) {
			// Text and state are read together: two separate reads can straddle the final update.
			const { text, state } = await status.evaluate((e) => ({
				text: e.textContent ?? "",
				state: e.getAttribute("data-status"),
			}));
			if (text && seen.at(-1) !== text) seen.push(text);
			if (state === "succeeded" || state === "failed" || state === "canceled") break;
			if (Date.now() > deadline) throw new Error(`no terminal status within 180 s; saw: ${seen.join(" | ")}`);
			await page.waitForTimeout(100);
		}
		expect(await status.getAttribute("data-status"), seen.join(" | ")).toBe("succeeded");
		// The live region went through the job's life: first the queued/running state, last the result.
		expect(seen[0]).toMatch(/^(Queued|Running)/);
		expect(seen.at(-1)).toMatch(/^Succeeded/);
		expect(await status.getAttribute("aria-live")).toBe("polite");
		expect(await page.locator("#image-progress").evaluate((e) => (e as HTMLProgressElement).value)).toBe(100);
		expect(await page.locator("#audio-progress").evaluate((e) => (e as HTMLProgressElement).value)).toBe(100);
		jobId = (await page.locator("#job-id").textContent()) ?? "";
		expect(jobId).toMatch(/^job_/);

		const video = await videoPlays(page);
		expect(video.readyState).toBeGreaterThanOrEqual(2);
		expect(video.duration).toBeGreaterThan(0);
		expect(video.width).toBeGreaterThan(0);
		const download = page.getByRole("link", { name: "Download the MP4" });
		expect(await download.getAttribute("download")).toBe(`${jobId}.mp4`);
		await expect.poll(() => page.locator("#recent li").filter({ hasText: jobId }).count(), POLL).toBe(1);
		await page.screenshot({ path: path.join(ARTIFACTS, "demo-desktop.png"), fullPage: true });
		// With a working event stream the page reads the job's updates from it alone, without polling.
		expect(streams.length).toBeGreaterThan(0);
		if (streams[0] === 200) expect(polls).toEqual([]);
		expect(pageErrors).toEqual([]);
		await page.close();
	});

	it("fits a 390×844 phone screen without horizontal overflow, and replays a recent job there", async () => {
		expect(jobId, "needs the job of the test above").not.toBe("");
		const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
		const page = await context.newPage();
		await page.goto(`${url}/`);
		expect(await horizontalOverflow(page)).toMatchObject({ over: [] });
		await saveKey(page, apiKey);
		await page.getByRole("button", { name: `Show job ${jobId}` }).click();
		await videoPlays(page);
		const layout = await horizontalOverflow(page);
		expect(layout.over).toEqual([]);
		expect(layout.scrollWidth).toBeLessThanOrEqual(layout.width);
		await page.screenshot({ path: path.join(ARTIFACTS, "demo-phone.png"), fullPage: true });
		await context.close();
	});
});
