import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PublicKey, readPrivateKey } from "openpgp";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { KeyPairProofError, KeyRejectedError, WeakPassphraseError, generateKeyPair, inspectPublicKey, proveKeyPair } from "../src/index.js";
import type { GeneratedKeyPair } from "../src/index.js";
import { createGnupgHome, fingerprintFromColons } from "./support/gnupg.js";
import type { GnupgHome } from "./support/gnupg.js";
import {
  expiredPublicKey,
  expiredSubkeyPublicKey,
  expiringPublicKey,
  revokedPublicKey,
  rsa1024PublicKey,
  rsa1024SubkeyPublicKey,
  signOnlyPublicKey,
  unprotectedPrivateKey,
  rfc9580V4PublicKey,
  v6PublicKey,
} from "./support/rejected-keys.js";

const PASSPHRASE = `Keys test ${randomBytes(4).toString("hex")}!`;

let rsa: GeneratedKeyPair;
let curve: GeneratedKeyPair;
let home: GnupgHome;

beforeAll(async () => {
  [rsa, curve] = await Promise.all([
    generateKeyPair({ passphrase: PASSPHRASE, algorithm: "rsa-2048", name: "Keys Test", email: "keys@example.com" }),
    generateKeyPair({ passphrase: PASSPHRASE, algorithm: "curve25519" }),
  ]);
  home = await createGnupgHome();
});

afterAll(async () => {
  await home?.close();
});

describe("generateKeyPair", () => {
  it("makes an RSA 2048 pair by default-style request, locked with the passphrase", async () => {
    expect(rsa.algorithm).toBe("rsa");
    expect(rsa.bits).toBe(2048);
    expect(rsa.fingerprint).toMatch(/^[0-9A-F]{40}$/);
    expect(rsa.publicKey).toMatch(/^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
    expect(rsa.privateKey).toMatch(/^-----BEGIN PGP PRIVATE KEY BLOCK-----/);
    const locked = await readPrivateKey({ armoredKey: rsa.privateKey });
    expect(locked.isDecrypted()).toBe(false);
    expect(rsa.privateKey).not.toContain(PASSPHRASE);
  });

  it("makes a Curve25519 pair GnuPG calls ed25519/cv25519", async () => {
    expect(curve.algorithm).toBe("curve25519");
    expect(curve.bits).toBe(255);
    const path = join(home.dir, "curve.pub.asc");
    await writeFile(path, curve.publicKey);
    await home.gpg(["--import", path]);
    const listing = (await home.gpg(["--with-colons", "--list-keys", curve.fingerprint])).stdout.toString("utf8");
    expect(fingerprintFromColons(listing)).toBe(curve.fingerprint);
    expect(listing).toMatch(/ed25519/);
    expect(listing).toMatch(/cv25519/);
  });

  it("uses the default algorithm rsa-2048 when none is given", async () => {
    const pair = await generateKeyPair({ passphrase: PASSPHRASE });
    expect(pair.algorithm).toBe("rsa");
    expect(pair.bits).toBe(2048);
  });

  it("refuses a weak passphrase with the reason, before generating anything", async () => {
    const error = await generateKeyPair({ passphrase: "Tiny1" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WeakPassphraseError);
    expect((error as WeakPassphraseError).code).toBe("passphrase.weak");
    expect((error as Error).message).toMatch(/at least 12 characters/);
    expect((error as Error).message).not.toContain("Tiny1");
  });
});

describe("inspectPublicKey accepts", () => {
  it("our RSA key and describes it", async () => {
    const info = await inspectPublicKey(rsa.publicKey);
    expect(info).toMatchObject({ fingerprint: rsa.fingerprint, algorithm: "rsa", bits: 2048 });
    expect(info.expiresAt).toBeUndefined();
    expect(info.encryptionKeyFingerprint).not.toBe(info.fingerprint);
    expect(info.userIds).toEqual(["Keys Test <keys@example.com>"]);
  });

  it("our Curve25519 key", async () => {
    const info = await inspectPublicKey(curve.publicKey);
    expect(info).toMatchObject({ fingerprint: curve.fingerprint, algorithm: "curve25519", bits: 255, curve: "curve25519" });
  });

  it("text around the armor, handing back the key re-armored from its packets alone", async () => {
    const [begin, ...rest] = curve.publicKey.split("\n");
    const pasted = `notes: passphrase hunter2\n\n${begin}\nComment: hunter2 again\n${rest.join("\n")}\nmore notes: hunter2\n`;
    const info = await inspectPublicKey(pasted);
    expect(info.publicKey).toMatch(/^-----BEGIN PGP PUBLIC KEY BLOCK-----\n/);
    expect(info.publicKey.trimEnd()).toMatch(/\n-----END PGP PUBLIC KEY BLOCK-----$/);
    expect(info.publicKey).not.toContain("hunter2");
    expect((await inspectPublicKey(info.publicKey)).fingerprint).toBe(curve.fingerprint);
  });

  it("a key that expires in the future, reporting when", async () => {
    const publicKey = await expiringPublicKey(30);
    const info = await inspectPublicKey(publicKey);
    expect(info.expiresAt).toBeInstanceOf(Date);
    expect(info.expiresAt!.getTime()).toBeGreaterThan(Date.now() + 29 * 86400_000);
  });
});

async function rejection(armored: string): Promise<KeyRejectedError> {
  const error = await inspectPublicKey(armored).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(KeyRejectedError);
  return error as KeyRejectedError;
}

describe("inspectPublicKey rejects, with a reason", () => {
  it("garbage armor", async () => {
    const error = await rejection("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nbm90IGEga2V5\n-----END PGP PUBLIC KEY BLOCK-----\n");
    expect(error.code).toBe("key.unparseable");
    expect(error.message).toMatch(/not an ASCII-armored OpenPGP public key/);
  });

  it("text that is not armor at all", async () => {
    expect((await rejection("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ user@host")).code).toBe("key.unparseable");
  });

  it("a private key pasted as public, without echoing it", async () => {
    const error = await rejection(rsa.privateKey);
    expect(error.code).toBe("key.private_key_given");
    expect(error.message).toMatch(/private key/);
    expect(error.message).not.toContain(rsa.privateKey.slice(40, 80));
  });

  it("an unprotected private key pasted as public", async () => {
    expect((await rejection(await unprotectedPrivateKey())).code).toBe("key.private_key_given");
  });

  it("two keys in one paste", async () => {
    expect((await rejection(`${rsa.publicKey}\n${curve.publicKey}`)).code).toBe("key.multiple_keys");
  });

  it("a sign-only key made by gpg", async () => {
    const uid = `Signer ${randomBytes(3).toString("hex")}`;
    await home.gpg(["--passphrase", "", "--pinentry-mode", "loopback", "--quick-gen-key", uid, "ed25519", "sign", "never"]);
    const publicKey = (await home.gpg(["--armor", "--export", uid])).stdout.toString("utf8");
    const error = await rejection(publicKey);
    expect(error.code).toBe("key.no_encryption_key");
    expect(error.message).toMatch(/encryption/);
  });

  it("a sign-only key made by openpgp.js (no subkeys)", async () => {
    expect((await rejection(await signOnlyPublicKey())).code).toBe("key.no_encryption_key");
  });

  it("an expired key", async () => {
    const error = await rejection(await expiredPublicKey());
    expect(error.code).toBe("key.expired");
    expect(error.message).toMatch(/expired on \d{4}-\d{2}-\d{2}/);
  });

  it("a key whose only encryption subkey expired", async () => {
    expect((await rejection(await expiredSubkeyPublicKey())).code).toBe("key.expired");
  });

  it("a revoked key", async () => {
    const error = await rejection(await revokedPublicKey());
    expect(error.code).toBe("key.revoked");
    expect(error.message).toMatch(/revoked/);
  });

  it("an RSA 1024 key", async () => {
    const error = await rejection(await rsa1024PublicKey());
    expect(error.code).toBe("key.weak_rsa");
    expect(error.message).toMatch(/RSA 1024-bit/);
    expect(error.message).toMatch(/2048/);
  });

  it("an RSA 2048 key whose encryption subkey is RSA 1024", async () => {
    const error = await rejection(await rsa1024SubkeyPublicKey());
    expect(error.code).toBe("key.weak_rsa");
    expect(error.message).toMatch(/1024/);
  });

  it("a v6 key GnuPG 2.2 cannot read", async () => {
    expect((await rejection(await v6PublicKey())).code).toBe("key.unsupported_version");
  });

  it("a v4 key with RFC 9580's X25519/Ed25519 algorithms, which GnuPG 2.2 cannot read either", async () => {
    const error = await rejection(await rfc9580V4PublicKey());
    expect(error.code).toBe("key.unsupported_algorithm");
    expect(error.message).toMatch(/RFC 9580/);
  });
});

describe("inspectPublicKey refuses GnuPG keys on algorithms we cannot use, naming them", () => {
  /** A GnuPG key: a signing primary key and one encryption subkey, of the algorithms given. */
  async function gpgKey(primary: string, encryptionSubkey: string): Promise<string> {
    const uid = `Algorithms ${primary} ${randomBytes(3).toString("hex")}`;
    await home.gpg(["--passphrase", "", "--pinentry-mode", "loopback", "--quick-gen-key", uid, primary, "sign", "never"]);
    const fingerprint = fingerprintFromColons((await home.gpg(["--with-colons", "--list-keys", uid])).stdout.toString("utf8"));
    await home.gpg(["--passphrase", "", "--pinentry-mode", "loopback", "--quick-add-key", fingerprint, encryptionSubkey, "encr", "never"]);
    return (await home.gpg(["--armor", "--export", fingerprint])).stdout.toString("utf8");
  }

  it.each([
    { primary: "brainpoolP256r1", subkey: "brainpoolP256r1", named: /brainpoolP256r1/ },
    { primary: "brainpoolP384r1", subkey: "brainpoolP384r1", named: /brainpoolP384r1/ },
    { primary: "secp256k1", subkey: "secp256k1", named: /secp256k1/ },
    { primary: "rsa2048", subkey: "elg2048", named: /ElGamal/ },
    { primary: "nistp256", subkey: "brainpoolP256r1", named: /brainpoolP256r1/ },
  ])("$primary with a $subkey encryption subkey", async ({ primary, subkey, named }) => {
    const error = await rejection(await gpgKey(primary, subkey));
    expect(error.code).toBe("key.unsupported_algorithm");
    expect(error.message).toMatch(named);
    expect(error.message).toMatch(/RSA.*Curve25519.*NIST P-256/);
    expect(error.message).not.toMatch(/self-signature|only sign/);
  });

  it("while NIST P-384 keys made by gpg are accepted", async () => {
    const info = await inspectPublicKey(await gpgKey("nistp384", "nistp384"));
    expect(info).toMatchObject({ algorithm: "nistp384", bits: 384 });
  });
});

describe("inspectPublicKey lets failures that are not the key's through", () => {
  it("a missing module is not reported as an invalid self-signature", async () => {
    const missing = Object.assign(new Error("Cannot find module 'some-optional-module'"), { code: "MODULE_NOT_FOUND" });
    const wrapped = new Error(`Could not find valid self-signature in key 0123456789abcdef: ${missing.message}`, { cause: missing });
    const spy = vi.spyOn(PublicKey.prototype, "verifyPrimaryKey").mockRejectedValue(wrapped);
    try {
      const error = await inspectPublicKey(curve.publicKey).catch((e: unknown) => e);
      expect(error).not.toBeInstanceOf(KeyRejectedError);
      expect(error).toBe(wrapped);
    } finally {
      spy.mockRestore();
    }
  });
});

describe("proveKeyPair", () => {
  it("accepts the matching private key and passphrase", async () => {
    await expect(proveKeyPair(rsa.publicKey, rsa.privateKey, PASSPHRASE)).resolves.toBeUndefined();
    await expect(proveKeyPair(curve.publicKey, curve.privateKey, PASSPHRASE)).resolves.toBeUndefined();
  });

  it.each([
    { name: "a wrong passphrase", args: () => [rsa.publicKey, rsa.privateKey, "Wrong passphrase 123"], code: "private_key.wrong_passphrase" },
    { name: "another key pair's private key", args: () => [rsa.publicKey, curve.privateKey, PASSPHRASE], code: "private_key.mismatch" },
    { name: "a public key given as private", args: () => [rsa.publicKey, rsa.publicKey, PASSPHRASE], code: "private_key.public_key_given" },
    { name: "garbage as private key", args: () => [rsa.publicKey, "not a key", PASSPHRASE], code: "private_key.unparseable" },
  ])("rejects $name", async ({ args, code }) => {
    const [publicKey, privateKey, passphrase] = args() as [string, string, string];
    const error = await proveKeyPair(publicKey, privateKey, passphrase).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeyPairProofError);
    expect((error as KeyPairProofError).code).toBe(code);
    expect((error as Error).message).not.toContain(passphrase);
    expect((error as Error).message).not.toContain(rsa.privateKey.split("\n")[3]);
  });

  it("rejects an invalid public key with the key's reason", async () => {
    const error = await proveKeyPair("garbage", rsa.privateKey, PASSPHRASE).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeyRejectedError);
  });
});
