/**
 * Job ids that carry their account: `job_` + 20 random base36 characters + a 12-character tag, an HMAC of the
 * random part and the account id under `SIGNING_SECRET`. A request for a job whose tag matches the caller's account
 * needs no storage read to know the job is the caller's, so a status read goes straight to the job's Durable
 * Object. The tag only ever saves a read: ids without one (made before tags, 20 characters) or whose tag does not
 * match (another account's job, a bogus id, a rotated secret) take the D1 index as before, and the job's own
 * record is checked in every case.
 */

import { setBounded } from "../lib/bounded-map";
import { hmacSign } from "../lib/crypto";
import { newId } from "../lib/ids";

const RANDOM_CHARS = 20;
const TAG_CHARS = 12;
const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz";
/** The tagged form; the untagged one is `job_` + 20 characters. */
const TAGGED = new RegExp(`^job_([a-z0-9]{${RANDOM_CHARS}})([a-z0-9]{${TAG_CHARS}})$`);

/** The tag binding `random` to `accountId`: about 62 bits of the HMAC, base36. */
async function tagOf(secret: string, accountId: string, random: string): Promise<string> {
	const mac = await hmacSign(secret, `job-id\n${accountId}\n${random}`);
	let out = "";
	for (let i = 0; i < TAG_CHARS; i++) out += ALPHABET[(mac.charCodeAt(i) * 31 + mac.charCodeAt(i + TAG_CHARS)) % 36];
	return out;
}

/** A new job id for `accountId`, tagged. */
export async function mintJobId(secret: string, accountId: string): Promise<string> {
	const random = newId("job").slice("job_".length, "job_".length + RANDOM_CHARS);
	return `job_${random}${await tagOf(secret, accountId, random)}`;
}

/**
 * Verdicts already reached in this isolate, per secret (bounded, oldest dropped first): a client polling its job asks
 * the same question every few seconds, and the answer never changes under one secret.
 */
const verdicts = new Map<string, Map<string, boolean>>();
const MAX_VERDICTS = 2000;

/** Whether `id`'s tag says it was made for `accountId`; false for untagged ids (the caller then asks the index). */
export async function tagSaysOwnedBy(secret: string, id: string, accountId: string): Promise<boolean> {
	let known = verdicts.get(secret);
	if (!known) {
		known = new Map();
		verdicts.set(secret, known);
	}
	const key = `${accountId}\n${id}`;
	const cached = known.get(key);
	if (cached !== undefined) return cached;
	const verdict = await checkTag(secret, id, accountId);
	setBounded(known, key, verdict, MAX_VERDICTS);
	return verdict;
}

async function checkTag(secret: string, id: string, accountId: string): Promise<boolean> {
	const match = TAGGED.exec(id);
	if (!match?.[1] || !match[2]) return false;
	const expected = await tagOf(secret, accountId, match[1]);
	// Constant time over the fixed length: the tag is the credential for skipping the index.
	let diff = 0;
	for (let i = 0; i < TAG_CHARS; i++) diff |= expected.charCodeAt(i) ^ match[2].charCodeAt(i);
	return diff === 0;
}
