import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { SealError, keyringFromConfig, needsReseal, seal, sealJson, unseal, unsealJson } from "../src/index.js";
import type { Keyring } from "../src/index.js";

const newKey = () => randomBytes(32).toString("base64");
const keyring: Keyring = { activeKeyId: "k1", keys: { k1: newKey() } };
const CONTEXT = "tenant:11111111-1111-1111-1111-111111111111/source";

describe("seal / unseal", () => {
  it("round-trips text, including non-ASCII", () => {
    const secret = `consumer-secret ✓ ${randomBytes(8).toString("hex")}`;
    const sealed = seal(secret, keyring, CONTEXT);
    expect(sealed).toMatch(/^v1\.k1\.[\w-]+\.[\w-]+$/);
    expect(sealed).not.toContain(secret);
    expect(unseal(sealed, keyring, CONTEXT)).toBe(secret);
  });

  it("uses a fresh nonce each time", () => {
    expect(seal("same", keyring, CONTEXT)).not.toBe(seal("same", keyring, CONTEXT));
  });

  it("round-trips JSON", () => {
    const value = { token: "t", tokenSecret: "s", nested: [1, 2, { deep: true }] };
    expect(unsealJson(sealJson(value, keyring, CONTEXT), keyring, CONTEXT)).toEqual(value);
  });

  it("detects tampering with the ciphertext", () => {
    const parts = seal("do not touch", keyring, CONTEXT).split(".");
    const body = Buffer.from(parts[3]!, "base64url");
    body[0] = body[0]! ^ 0x01;
    const tampered = [parts[0], parts[1], parts[2], body.toString("base64url")].join(".");
    expect(() => unseal(tampered, keyring, CONTEXT)).toThrow(SealError);
  });

  it("refuses to open under another context (a value copied to another tenant)", () => {
    const sealed = seal("bound", keyring, CONTEXT);
    expect(() => unseal(sealed, keyring, "tenant:22222222-2222-2222-2222-222222222222/source")).toThrow(/failed authentication/);
  });

  it("rejects values that are not sealed or are truncated", () => {
    expect(() => unseal("plain text", keyring, CONTEXT)).toThrow(/not a sealed value/);
    expect(() => unseal("v1.k1.AAAA.AAAA", keyring, CONTEXT)).toThrow(/truncated/);
  });

  it("never puts the secret or the key in the error message", () => {
    const secret = "hunter2-very-secret";
    const sealed = seal(secret, keyring, CONTEXT);
    try {
      unseal(sealed, keyring, "other");
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message).not.toContain(secret);
      expect((error as Error).message).not.toContain(keyring.keys.k1);
    }
  });
});

describe("key rotation with two key ids", () => {
  const before: Keyring = { activeKeyId: "2025", keys: { "2025": newKey() } };
  const after: Keyring = { activeKeyId: "2026", keys: { ...before.keys, "2026": newKey() } };

  it("opens old values with their key and seals new ones with the active key", () => {
    const old = seal("old secret", before, CONTEXT);
    expect(unseal(old, after, CONTEXT)).toBe("old secret");
    expect(needsReseal(old, after)).toBe(true);
    const fresh = seal("new secret", after, CONTEXT);
    expect(fresh.split(".")[1]).toBe("2026");
    expect(needsReseal(fresh, after)).toBe(false);
    expect(unseal(fresh, after, CONTEXT)).toBe("new secret");
  });

  it("fails clearly once the old key is removed", () => {
    const old = seal("old secret", before, CONTEXT);
    const retired: Keyring = { activeKeyId: "2026", keys: { "2026": after.keys["2026"]! } };
    expect(() => unseal(old, retired, CONTEXT)).toThrow(/unknown key id "2025"/);
  });

  it("fails clearly for a value naming a key id every object has (constructor, toString)", () => {
    const old = seal("old secret", before, CONTEXT);
    for (const id of ["constructor", "toString", "__proto__"]) {
      expect(() => unseal(old.replace(".2025.", `.${id}.`), after, CONTEXT), id).toThrow(SealError);
    }
  });

  it("rejects a key of the wrong length", () => {
    const bad: Keyring = { activeKeyId: "short", keys: { short: randomBytes(16).toString("base64") } };
    expect(() => seal("x", bad, CONTEXT)).toThrow(/not 32 bytes/);
  });

  it("builds a keyring from the configuration", () => {
    expect(keyringFromConfig({ SECRETS_MASTER_KEYS: after.keys, SECRETS_ACTIVE_KEY_ID: "2026" })).toEqual(after);
  });
});
