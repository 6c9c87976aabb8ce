// `.dev.vars` completion by `npm start`: missing secrets are added, existing values never change.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, expect, it } from "vitest";
import { ensureDevVars, parseDevVars } from "../../scripts/lib/dev-vars.mjs";

const dirs: string[] = [];
function tempFile() {
	const dir = mkdtempSync(path.join(tmpdir(), "reelgate-devvars-"));
	dirs.push(dir);
	return path.join(dir, ".dev.vars");
}
afterEach(() => {
	for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

it("creates the file with every secret, readable only by its owner", () => {
	const file = tempFile();
	const { added, created, vars } = ensureDevVars(file);
	expect(created).toBe(true);
	expect(added.sort()).toEqual(["ADMIN_TOKEN", "BACKEND_SECRETS_KEY", "POD_API_TOKEN", "SIGNING_SECRET"]);
	expect(parseDevVars(readFileSync(file, "utf8"))).toEqual(vars);
	expect(Buffer.from(vars.BACKEND_SECRETS_KEY, "base64")).toHaveLength(32);
	expect(statSync(file).mode & 0o077).toBe(0);
});

it("keeps existing values and fills only the missing or empty ones", () => {
	const file = tempFile();
	writeFileSync(file, '# mine\nADMIN_TOKEN="keep-me"\nBACKEND_SECRETS_KEY=\nOTHER=x\n');
	const { added, vars } = ensureDevVars(file);
	expect(added.sort()).toEqual(["BACKEND_SECRETS_KEY", "POD_API_TOKEN", "SIGNING_SECRET"]);
	const text = readFileSync(file, "utf8");
	expect(text).toContain("# mine");
	expect(text).toContain('ADMIN_TOKEN="keep-me"');
	expect(text.match(/BACKEND_SECRETS_KEY=/g)).toHaveLength(1);
	expect(vars.ADMIN_TOKEN).toBe("keep-me");
	expect(parseDevVars(text)).toEqual({ ...vars, OTHER: "x" });
	// A second run changes nothing.
	expect(ensureDevVars(file).added).toEqual([]);
	expect(readFileSync(file, "utf8")).toBe(text);
});
