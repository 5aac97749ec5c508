import { readMessage } from "openpgp";
import type { PrivateKey } from "openpgp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inspectPublicKey } from "../src/index.js";
import { createGnupgHome } from "./support/gnupg.js";
import { twoSubkeyKey } from "./support/key-builders.js";
import type { GnupgHome } from "./support/gnupg.js";

const DAY_MS = 86_400_000;
/** Whole seconds, as OpenPGP stores times. */
const NOW = new Date(Math.floor(Date.now() / 1000) * 1000);
const daysFrom = (date: Date, days: number) => new Date(date.getTime() + days * DAY_MS);

/** Made 10 days ago with its first encryption subkey; the second added a day ago (the one encrypted to now). */
const keyWithTwoSubkeys = (options: { primaryDays?: number; firstDays?: number; secondDays: number }) =>
  twoSubkeyKey({ ...options, created: daysFrom(NOW, -10), secondAdded: daysFrom(NOW, -1) });

const subkeyFingerprints = (key: PrivateKey) => key.getSubkeys().map((subkey) => subkey.getFingerprint().toUpperCase());

let home: GnupgHome;

beforeAll(async () => {
  home = await createGnupgHome();
});

afterAll(async () => {
  await home?.close();
});

describe("expiresAt of a key with several encryption subkeys", () => {
  it("is not the newest subkey's expiry when an older valid one never expires: that one takes over", async () => {
    // The second subkey was made a day ago for 3 days: it expires in 2; the first never does.
    const { key, armored } = await keyWithTwoSubkeys({ secondDays: 3 });
    const [first, second] = subkeyFingerprints(key);
    const now = await inspectPublicKey(armored, NOW);
    expect(now.encryptionKeyFingerprint).toBe(second);
    expect(now.expiresAt).toBeUndefined();
    // Once the newest subkey has expired the key is still encrypted to, with the older subkey.
    const later = await inspectPublicKey(armored, daysFrom(NOW, 3));
    expect(later.encryptionKeyFingerprint).toBe(first);
    expect(later.expiresAt).toBeUndefined();
  });

  it("is the latest expiry of the valid encryption subkeys, not that of the one encrypted to now", async () => {
    const { key, armored } = await keyWithTwoSubkeys({ firstDays: 30, secondDays: 3 });
    const [first, second] = subkeyFingerprints(key);
    const info = await inspectPublicKey(armored, NOW);
    expect(info.encryptionKeyFingerprint).toBe(second);
    expect(info.expiresAt).toEqual(daysFrom(NOW, 20));
    expect((await inspectPublicKey(armored, daysFrom(NOW, 3))).encryptionKeyFingerprint).toBe(first);
  });

  it("is capped by the primary key's expiry", async () => {
    const { armored } = await keyWithTwoSubkeys({ primaryDays: 40, secondDays: 3 });
    expect((await inspectPublicKey(armored, NOW)).expiresAt).toEqual(daysFrom(NOW, 30));
  });

  it("is that of the only valid subkey once the others have expired", async () => {
    const { armored } = await keyWithTwoSubkeys({ firstDays: 30, secondDays: 3 });
    expect((await inspectPublicKey(armored, daysFrom(NOW, 3))).expiresAt).toEqual(daysFrom(NOW, 20));
  });

  it("agrees with GnuPG, which encrypts to the older subkey once the newest has expired", async () => {
    const { key, armored } = await keyWithTwoSubkeys({ secondDays: 3 });
    const [first, second] = subkeyFingerprints(key) as [string, string];
    await home.gpg(["--import"], armored);
    const fingerprint = key.getFingerprint().toUpperCase();
    const recipientAt = async (date: Date) => {
      const faked = ["--faked-system-time", `${Math.floor(date.getTime() / 1000)}!`];
      const { stdout } = await home.gpg([...faked, "--trust-model", "always", "--armor", "--encrypt", "--recipient", fingerprint], "report");
      const message = await readMessage({ armoredMessage: stdout.toString("utf8") });
      return message.getEncryptionKeyIDs().map((id) => id.toHex().toUpperCase());
    };
    expect(await recipientAt(NOW)).toEqual([second.slice(-16)]);
    expect(await recipientAt(daysFrom(NOW, 3))).toEqual([first.slice(-16)]);
    expect((await inspectPublicKey(armored, daysFrom(NOW, 3))).encryptionKeyFingerprint).toBe(first);
  });
});
