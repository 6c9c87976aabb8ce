// Launches the system Chromium (never a downloaded browser) or explains why the browser tests cannot run.
import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const CI = process.env.CI === "true" || process.env.CI === "1";

/** Why the browser tests are skipped, or undefined when Chromium is there. Under CI a missing browser is an error. */
export function chromiumMissing(): string | undefined {
	if (existsSync(CHROMIUM_PATH)) return undefined;
	const message = `Chromium not found at ${CHROMIUM_PATH} (install it: apt-get install chromium, or set CHROMIUM_PATH)`;
	if (CI) throw new Error(`${message}; the browser tests are required under CI=true.`);
	return message;
}

export function launchChromium(): Promise<Browser> {
	return chromium.launch({
		executablePath: CHROMIUM_PATH,
		args: [
			"--headless=new",
			"--no-sandbox",
			"--disable-gpu",
			"--disable-quic",
			"--no-first-run",
			"--disable-background-networking",
			"--disable-component-update",
			"--disable-sync",
			// The test plays the video without a user gesture.
			"--autoplay-policy=no-user-gesture-required",
		],
	});
}
