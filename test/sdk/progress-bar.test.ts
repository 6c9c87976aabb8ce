import { describe, expect, it } from "vitest";
import { ProgressBar } from "../../sdk/progress-bar.ts";

function fakeStream(isTTY: boolean) {
	const writes: string[] = [];
	const stream = { isTTY, columns: 80, write: (s: string) => writes.push(s) > 0 };
	return { writes, bar: new ProgressBar(stream as unknown as NodeJS.WriteStream) };
}

describe("ProgressBar", () => {
	it("redraws one line in place on a terminal", () => {
		const { writes, bar } = fakeStream(true);
		bar.update("running", 0, "queued");
		bar.update("running", 0, "queued");
		bar.update("running", 50, "render");
		bar.done();
		expect(writes).toHaveLength(3);
		// Carriage return and "erase line" first, so the bar overwrites itself.
		expect(writes[1]?.startsWith("\r\u001b[2K")).toBe(true);
		expect(writes[1]?.slice(5)).toMatch(/^running\s+\[#{10,}-+\]\s+50% render$/);
		expect(writes[2]).toBe("\n");
	});

	it("logs plain lines without a terminal: per label or stage, and per 10 %", () => {
		const { writes, bar } = fakeStream(false);
		for (let p = 0; p <= 100; p += 1) bar.update("upload in.png", p);
		bar.update("running", 40, "render");
		bar.update("running", 45, "render");
		bar.update("running", 45, "encode");
		bar.done();
		expect(writes.filter((w) => w.startsWith("upload"))).toHaveLength(11);
		expect(writes.slice(-2)).toEqual(["running 40% render\n", "running 45% encode\n"]);
		expect(writes.join("")).not.toContain("\x1b");
	});
});
