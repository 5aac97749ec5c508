import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { generateKey, readPrivateKey, revokeKey } from "openpgp";
import type { PrivateKey, SecretKeyPacket } from "openpgp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyRejectedError, generateKeyPair, inspectPublicKey, mergePublicKey, updatePublicKey } from "../src/index.js";
import { createGnupgHome, fingerprintFromColons } from "./support/gnupg.js";
import type { GnupgHome } from "./support/gnupg.js";

const DAY_MS = 86_400_000;

let home: GnupgHome;
let fingerprint: string;
let firstSubkey: string;
/** The key as first exported: expires in a year. */
let original: string;
/** The same key, its expiry (and its subkey's) extended to two years. */
let extended: string;
/** Then a new encryption subkey added and the first one revoked. */
let rotated: string;

/** Upper-case fingerprints of the key's subkeys, oldest first, from a gpg colon listing. */
async function subkeyFingerprints(): Promise<string[]> {
  const listing = (await home.gpg(["--with-colons", "--list-keys", fingerprint])).stdout.toString("utf8").split("\n");
  return listing.filter((line, i) => line.startsWith("fpr:") && listing[i - 1]?.startsWith("sub:")).map((line) => line.split(":")[9] as string);
}

const exportKey = async () => (await home.gpg(["--armor", "--export", fingerprint])).stdout.toString("utf8");

beforeAll(async () => {
  home = await createGnupgHome();
  const uid = `Update ${randomBytes(3).toString("hex")} <update@example.com>`;
  await home.gpg(["--passphrase", "", "--pinentry-mode", "loopback", "--quick-gen-key", uid, "future-default", "default", "1y"]);
  fingerprint = fingerprintFromColons((await home.gpg(["--with-colons", "--list-keys", uid])).stdout.toString("utf8"));
  [firstSubkey] = (await subkeyFingerprints()) as [string];
  original = await exportKey();
  await home.gpg(["--quick-set-expire", fingerprint, "2y"]);
  await home.gpg(["--quick-set-expire", fingerprint, "2y", "*"]);
  extended = await exportKey();
  await home.gpg(["--passphrase", "", "--pinentry-mode", "loopback", "--quick-add-key", fingerprint, "cv25519", "encr", "2y"]);
  // gpg 2.2 has no one-line command to revoke a subkey: answer --edit-key's prompts.
  await home.gpg(["--pinentry-mode", "loopback", "--passphrase", "", "--command-fd", "0", "--edit-key", fingerprint], "key 1\nrevkey\ny\n0\n\ny\nsave\n");
  rotated = await exportKey();
});

afterAll(async () => {
  await home?.close();
});

describe("updatePublicKey", () => {
  it("takes an extended expiry", async () => {
    const before = await inspectPublicKey(original);
    const info = await updatePublicKey(original, extended);
    expect(info.fingerprint).toBe(fingerprint);
    expect(before.expiresAt!.getTime()).toBeLessThan(Date.now() + 400 * DAY_MS);
    expect(info.expiresAt!.getTime()).toBeGreaterThan(Date.now() + 700 * DAY_MS);
    expect((await inspectPublicKey(info.publicKey)).expiresAt).toEqual(info.expiresAt);
  });

  it("takes a rotated encryption subkey: the revoked one is no longer encrypted to", async () => {
    const [first, second] = await subkeyFingerprints();
    expect(first).toBe(firstSubkey);
    expect((await inspectPublicKey(extended)).encryptionKeyFingerprint).toBe(firstSubkey);
    const info = await updatePublicKey(extended, rotated);
    expect(info.encryptionKeyFingerprint).toBe(second);
    expect((await inspectPublicKey(info.publicKey)).encryptionKeyFingerprint).toBe(second);
  });

  it("keeps what the stored key already had: an older export does not undo a revocation", async () => {
    const [, second] = await subkeyFingerprints();
    const info = await updatePublicKey(rotated, original);
    expect(info.encryptionKeyFingerprint).toBe(second);
    expect(info.expiresAt!.getTime()).toBeGreaterThan(Date.now() + 700 * DAY_MS);
  });

  it("refuses an update that leaves the key unusable, with the inspection's reason", async () => {
    const uid = `Revoked ${randomBytes(3).toString("hex")}`;
    await home.gpg(["--passphrase", "", "--pinentry-mode", "loopback", "--quick-gen-key", uid, "future-default", "default", "never"]);
    const revokedFingerprint = fingerprintFromColons((await home.gpg(["--with-colons", "--list-keys", uid])).stdout.toString("utf8"));
    const before = (await home.gpg(["--armor", "--export", revokedFingerprint])).stdout.toString("utf8");
    // gpg stores a revocation certificate with each key it makes, its armor line escaped with ":".
    const certificate = await readFile(join(home.dir, "openpgp-revocs.d", `${revokedFingerprint}.rev`), "utf8");
    await home.gpg(["--import"], certificate.replace(/^:-----BEGIN/m, "-----BEGIN"));
    const after = (await home.gpg(["--armor", "--export", revokedFingerprint])).stdout.toString("utf8");
    const error = await updatePublicKey(before, after).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeyRejectedError);
    expect((error as KeyRejectedError).code).toBe("key.revoked");
  });

  it("refuses another key", async () => {
    const other = await generateKeyPair({ passphrase: `Other key ${randomBytes(4).toString("hex")}!`, algorithm: "curve25519" });
    await expect(updatePublicKey(original, other.publicKey)).rejects.toThrow(/not the same key/);
  });
});

describe("mergePublicKey: the owner's revocation", () => {
  const DAY_S = 86_400;
  const makeKey = async (options: { daysAgo?: number; expiresInDays?: number } = {}) =>
    (
      await generateKey({
        type: "ecc",
        curve: "curve25519Legacy",
        userIDs: [{ name: `Merge ${randomBytes(3).toString("hex")}` }],
        date: new Date(Date.now() - (options.daysAgo ?? 0) * DAY_MS),
        ...(options.expiresInDays !== undefined ? { keyExpirationTime: ((options.daysAgo ?? 0) + options.expiresInDays) * DAY_S } : {}),
        format: "object",
      })
    ).privateKey;
  const publicOf = (key: PrivateKey) => key.toPublic().armor();
  /** The key with its encryption subkey(s) at `indexes` revoked. */
  const revokeSubkeys = async (key: PrivateKey, indexes: number[]) => {
    const copy = await readPrivateKey({ armoredKey: key.armor() });
    for (const i of indexes) copy.subkeys[i] = await copy.subkeys[i]!.revoke(copy.keyPacket as SecretKeyPacket);
    return copy;
  };

  it("takes a revoked primary key: not usable, the merged key (revocation included) to store", async () => {
    const key = await makeKey();
    const revoked = (await revokeKey({ key, format: "object" })).publicKey;
    const merged = await mergePublicKey(publicOf(key), revoked.armor());
    expect(merged.usable).toBe(false);
    if (merged.usable) return;
    expect(merged.revoked).toMatchObject({ fingerprint: key.getFingerprint().toUpperCase(), revocation: "key" });
    expect(merged.revoked.reason.code).toBe("key.revoked");
    const stored = await inspectPublicKey(merged.revoked.publicKey).catch((e: unknown) => e);
    expect((stored as KeyRejectedError).code).toBe("key.revoked");
    // updatePublicKey, for callers that only take usable keys, still refuses it.
    await expect(updatePublicKey(publicOf(key), revoked.armor())).rejects.toMatchObject({ code: "key.revoked" });
  });

  it("takes every encryption subkey revoked, and an older export cannot undo it", async () => {
    const key = await makeKey();
    const revoked = publicOf(await revokeSubkeys(key, [0]));
    const merged = await mergePublicKey(publicOf(key), revoked);
    expect(merged.usable).toBe(false);
    if (merged.usable) return;
    expect(merged.revoked.revocation).toBe("encryption_subkeys");
    // The same revocation again, and the export from before it, leave the key revoked.
    for (const again of [revoked, publicOf(key)]) {
      const next = await mergePublicKey(merged.revoked.publicKey, again);
      expect(next.usable).toBe(false);
    }
  });

  it("keeps a key usable when a revoked subkey's export lacks a valid subkey the stored key has", async () => {
    const key = await makeKey();
    const withSecond = await key.addSubkey({});
    const second = withSecond.subkeys[1]!.getFingerprint().toUpperCase();
    expect(key.subkeys).toHaveLength(1);
    // The first subkey revoked in an export made before the second was added.
    const merged = await mergePublicKey(publicOf(withSecond), publicOf(await revokeSubkeys(key, [0])));
    expect(merged.usable).toBe(true);
    if (!merged.usable) return;
    expect(merged.info.encryptionKeyFingerprint).toBe(second);
  });

  it("still refuses an expired key that nothing new revokes, with the inspection's reason", async () => {
    const expired = publicOf(await makeKey({ daysAgo: 3, expiresInDays: -1 }));
    await expect(mergePublicKey(expired, expired)).rejects.toMatchObject({ code: "key.expired" });
  });
});
