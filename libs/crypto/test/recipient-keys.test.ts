import { generateKey, reformatKey } from "openpgp";
import { describe, expect, it } from "vitest";
import { KeyRejectedError, RecipientKeyCache } from "../src/index.js";
import { expiringPublicKey, revokedPublicKey } from "./support/rejected-keys.js";

const DAY_MS = 86_400_000;

describe("RecipientKeyCache", () => {
  it("parses and checks a key once, then hands back the same key", async () => {
    const cache = new RecipientKeyCache();
    const armored = await expiringPublicKey(30);
    const first = await cache.get(armored);
    expect(await cache.get(armored)).toBe(first);
    expect(cache.size).toBe(1);
  });

  it("rejects a cached key once its expiry has passed, with the usual typed reason", async () => {
    const cache = new RecipientKeyCache();
    const armored = await expiringPublicKey(2);
    const now = Date.now();
    await cache.get(armored, new Date(now));
    await cache.get(armored, new Date(now + DAY_MS));
    const error = await cache.get(armored, new Date(now + 3 * DAY_MS)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeyRejectedError);
    expect((error as KeyRejectedError).code).toBe("key.expired");
    expect(cache.size).toBe(0);
  });

  it("takes a key updated on the account (same fingerprint, new text) at once, not the cached old text", async () => {
    const cache = new RecipientKeyCache();
    const { privateKey, publicKey: before } = await generateKey({ type: "ecc", curve: "curve25519Legacy", userIDs: [{ name: "Renewed" }], keyExpirationTime: 2 * 86_400, format: "object" });
    const after = (await reformatKey({ privateKey, userIDs: [{ name: "Renewed" }], keyExpirationTime: 30 * 86_400, format: "object" })).publicKey;
    expect(after.getFingerprint()).toBe(before.getFingerprint());
    const now = Date.now();
    await cache.get(before.armor(), new Date(now));
    await expect(cache.get(before.armor(), new Date(now + 3 * DAY_MS))).rejects.toMatchObject({ code: "key.expired" });
    const renewed = await cache.get(after.armor(), new Date(now + 3 * DAY_MS));
    expect(await renewed.getExpirationTime()).toEqual(await after.getExpirationTime());
  });

  it("never keeps a key it rejected", async () => {
    const cache = new RecipientKeyCache();
    const armored = await revokedPublicKey();
    for (let i = 0; i < 2; i++) {
      await expect(cache.get(armored)).rejects.toMatchObject({ code: "key.revoked" });
    }
    await expect(cache.get("not a key")).rejects.toBeInstanceOf(KeyRejectedError);
    expect(cache.size).toBe(0);
  });

  it("keeps at most its bound, dropping the least recently used", async () => {
    const cache = new RecipientKeyCache(2);
    const [a, b, c] = await Promise.all([expiringPublicKey(10), expiringPublicKey(10), expiringPublicKey(10)]);
    const keyA = await cache.get(a!);
    await cache.get(b!);
    await cache.get(a!); // a is now the most recently used
    await cache.get(c!); // evicts b
    expect(cache.size).toBe(2);
    expect(await cache.get(a!)).toBe(keyA);
  });
});
