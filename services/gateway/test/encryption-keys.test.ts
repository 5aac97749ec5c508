import { randomBytes } from "node:crypto";
import { execFile } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encryptStream, generateKeyPair, inspectPublicKey } from "@transporter/crypto";
import { keyAndItsRevocation, twoSubkeyKey } from "../../../libs/crypto/test/support/key-builders.js";
import { expiredPublicKey, revokedPublicKey, rsa1024PublicKey, signOnlyPublicKey } from "../../../libs/crypto/test/support/rejected-keys.js";
import { setupGateway } from "./helpers.js";
import type { TestGateway } from "./helpers.js";

const run = promisify(execFile);
const DAY_MS = 86_400_000;

// Secrets used in this file: none of them may ever show up in a log line, row or audit entry.
const PASSPHRASE = `Generated ${randomBytes(6).toString("hex")} key`;
const BYO_PASSPHRASE = `Brought ${randomBytes(6).toString("hex")} key`;
const privateKeysSeen: { privateKey: string; publicKey: string }[] = [];

/**
 * Armor lines of a private key that its public key does not have: the secret parameters (and
 * everything after them, which shifts out of the public key's line alignment).
 */
function secretLines({ privateKey, publicKey }: { privateKey: string; publicKey: string }): string[] {
  const publicLines = new Set(publicKey.split("\n"));
  return privateKey.split("\n").filter((line) => line.length >= 40 && !line.startsWith("-----") && !publicLines.has(line));
}

let gw: TestGateway;
let adminKey: string;
let tenantId: string;
let gnupgHome: string;

async function gpg(args: string[], stdin = ""): Promise<string> {
  const child = run("gpg", ["--batch", "--no-tty", ...args], { env: { ...process.env, GNUPGHOME: gnupgHome, LC_ALL: "C" } });
  // gpg may exit without reading its input (EPIPE): its exit status already tells what happened.
  child.child.stdin?.on("error", () => undefined);
  child.child.stdin?.end(stdin);
  return (await child).stdout;
}

beforeAll(async () => {
  gnupgHome = await mkdtemp(join(tmpdir(), "gpg-gw-"));
  await chmod(gnupgHome, 0o700);
  gw = await setupGateway();
  const created = await gw.createTenant();
  adminKey = created.adminKey;
  tenantId = created.tenant.id;
});

afterAll(async () => {
  await gw?.close();
  await run("gpgconf", ["--kill", "all"], { env: { ...process.env, GNUPGHOME: gnupgHome } }).catch(() => undefined);
  await rm(gnupgHome, { recursive: true, force: true });
});

/** The key's subkeys from a gpg colon listing: fingerprint and whether gpg sees it revoked. */
async function gpgSubkeys(fingerprint: string): Promise<{ fingerprint: string; revoked: boolean }[]> {
  const lines = (await gpg(["--with-colons", "--list-keys", fingerprint])).split("\n");
  return lines.flatMap((line, i) => {
    const next = lines[i + 1] ?? "";
    return line.startsWith("sub:") && next.startsWith("fpr:") ? [{ fingerprint: next.split(":")[9] as string, revoked: line.split(":")[1] === "r" }] : [];
  });
}

async function openEncryptionAlert(id = tenantId) {
  return gw.prisma.alert.findFirst({ where: { tenantId: id, dedupeKey: "setup.encryption", resolvedAt: null } });
}

async function activeKeys(id = tenantId) {
  return gw.prisma.encryptionKey.findMany({ where: { tenantId: id, active: true, deletedAt: null } });
}

describe("POST /v1/encryption-keys/generate", () => {
  it("raises the setup alert while the tenant has no key", async () => {
    expect(await openEncryptionAlert()).not.toBeNull();
  });

  it("refuses a weak passphrase with the reason, and never echoes it", async () => {
    for (const passphrase of ["Short1!", "alllowercaseletters"]) {
      const res = await gw.call(adminKey, "POST", "/v1/encryption-keys/generate", { passphrase });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe("passphrase.weak");
      expect(res.body.detail).toMatch(/at least 12 characters|only lower-case letters/);
      expect(JSON.stringify(res.body)).not.toContain(passphrase);
    }
    expect(await gw.prisma.encryptionKey.count({ where: { tenantId } })).toBe(0);
  });

  it("generates an RSA 2048 pair by default, returns the private key once and stores only the public part", async () => {
    const res = await gw.call(adminKey, "POST", "/v1/encryption-keys/generate", { passphrase: PASSPHRASE, name: "Primary" });
    expect(res.status).toBe(201);
    privateKeysSeen.push({ privateKey: res.body.privateKey, publicKey: res.body.publicKey });
    expect(res.body).toMatchObject({ algorithm: "rsa", bits: 2048, origin: "generated", active: true, name: "Primary" });
    expect(res.body.fingerprint).toMatch(/^[0-9A-F]{40}$/);
    expect(res.body.privateKey).toMatch(/^-----BEGIN PGP PRIVATE KEY BLOCK-----/);
    expect(res.body.publicKey).toMatch(/^-----BEGIN PGP PUBLIC KEY BLOCK-----/);

    const row = await gw.prisma.encryptionKey.findUniqueOrThrow({ where: { id: res.body.id } });
    expect(row.publicKey).toBe(res.body.publicKey);
    expect(JSON.stringify(row)).not.toContain("PRIVATE KEY");
    // The first key becomes active and the reminder goes away.
    expect(row.active).toBe(true);
    expect(await openEncryptionAlert()).toBeNull();

    const fetched = await gw.call(adminKey, "GET", `/v1/encryption-keys/${res.body.id}`);
    expect(fetched.status).toBe(200);
    expect(fetched.body.privateKey).toBeUndefined();
    expect(fetched.body.publicKey).toBe(res.body.publicKey);
  });

  it("generates a Curve25519 pair on request; a second key is not activated by itself", async () => {
    const res = await gw.call(adminKey, "POST", "/v1/encryption-keys/generate", { passphrase: PASSPHRASE, algorithm: "curve25519" });
    expect(res.status).toBe(201);
    privateKeysSeen.push({ privateKey: res.body.privateKey, publicKey: res.body.publicKey });
    expect(res.body).toMatchObject({ algorithm: "curve25519", bits: 255, active: false });
    expect(await activeKeys()).toHaveLength(1);
  });

  it("rejects an unknown algorithm", async () => {
    const res = await gw.call(adminKey, "POST", "/v1/encryption-keys/generate", { passphrase: PASSPHRASE, algorithm: "dsa-1024" });
    expect(res.status).toBe(400);
    expect(res.body.errors[0].path).toBe("body.algorithm");
  });
});

describe("POST /v1/encryption-keys (bring your own) rejects, with a reason", () => {
  const cases: { name: string; code: string; detail: RegExp; make: () => Promise<string> }[] = [
    { name: "garbage armor", code: "key.unparseable", detail: /not an ASCII-armored OpenPGP public key/, make: async () => "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nZ2FyYmFnZQ==\n-----END PGP PUBLIC KEY BLOCK-----" },
    {
      name: "a private key pasted as public",
      code: "key.private_key_given",
      detail: /private key/,
      make: async () => {
        const pair = await generateKeyPair({ passphrase: BYO_PASSPHRASE, algorithm: "curve25519" });
        privateKeysSeen.push(pair);
        return pair.privateKey;
      },
    },
    {
      name: "a sign-only key",
      code: "key.no_encryption_key",
      detail: /no encryption-capable/,
      make: signOnlyPublicKey,
    },
    {
      name: "an expired key",
      code: "key.expired",
      detail: /expired/,
      make: expiredPublicKey,
    },
    {
      name: "a revoked key",
      code: "key.revoked",
      detail: /revoked/,
      make: revokedPublicKey,
    },
    {
      name: "an RSA 1024 key",
      code: "key.weak_rsa",
      detail: /RSA 1024-bit.*2048/,
      make: rsa1024PublicKey,
    },
  ];

  it.each(cases)("$name", async ({ code, detail, make }) => {
    const res = await gw.call(adminKey, "POST", "/v1/encryption-keys", { publicKey: await make() });
    expect(res.status).toBe(400);
    expect(res.headers["content-type"]).toMatch(/application\/problem\+json/);
    expect(res.body.code).toBe(code);
    expect(res.body.detail).toMatch(detail);
    expect(res.body.errors).toEqual([{ path: "body.publicKey", message: res.body.detail }]);
  });

  it("a body without a public key", async () => {
    const res = await gw.call(adminKey, "POST", "/v1/encryption-keys", {});
    expect(res.status).toBe(400);
    expect(res.body.errors[0].path).toBe("body.publicKey");
  });

  it("a key over 100,000 characters, with what to do about it", async () => {
    const res = await gw.call(adminKey, "POST", "/v1/encryption-keys", { publicKey: "x".repeat(100_001) });
    expect(res.status).toBe(400);
    expect(res.body.errors[0]).toMatchObject({ path: "body.publicKey", message: expect.stringContaining("export-minimal") });
  });
});

describe("bring your own key made by GnuPG", () => {
  let publicKey: string;
  let privateKey: string;
  let accepted: { id: string; fingerprint: string; active: boolean; expiresAt: string | null; publicKey: string };

  beforeAll(async () => {
    const uid = `Customer ${randomBytes(3).toString("hex")} <customer@example.com>`;
    await gpg(["--pinentry-mode", "loopback", "--passphrase-fd", "0", "--quick-gen-key", uid, "future-default", "default", "never"], `${BYO_PASSPHRASE}\n`);
    publicKey = await gpg(["--armor", "--export", uid]);
    privateKey = await gpg(["--pinentry-mode", "loopback", "--passphrase-fd", "0", "--armor", "--export-secret-keys", uid], `${BYO_PASSPHRASE}\n`);
    privateKeysSeen.push({ privateKey, publicKey });
  });

  it("refuses a wrong passphrase for the private key", async () => {
    const res = await gw.call(adminKey, "POST", "/v1/encryption-keys", { publicKey, privateKey, passphrase: "Not the passphrase 1" });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("private_key.wrong_passphrase");
    expect(res.body.errors[0].path).toBe("body.passphrase");
  });

  it("refuses a private key that belongs to another key", async () => {
    const other = await generateKeyPair({ passphrase: BYO_PASSPHRASE, algorithm: "curve25519" });
    privateKeysSeen.push(other);
    const res = await gw.call(adminKey, "POST", "/v1/encryption-keys", { publicKey, privateKey: other.privateKey, passphrase: BYO_PASSPHRASE });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("private_key.mismatch");
  });

  it("refuses a private key without its passphrase", async () => {
    const res = await gw.call(adminKey, "POST", "/v1/encryption-keys", { publicKey, privateKey });
    expect(res.status).toBe(400);
    expect(res.body.errors[0].path).toBe("body.passphrase");
  });

  it("accepts it with the proof, keeping neither the private key nor the passphrase", async () => {
    const res = await gw.call(adminKey, "POST", "/v1/encryption-keys", { publicKey, privateKey, passphrase: BYO_PASSPHRASE, name: "From GnuPG" });
    expect(res.status).toBe(201);
    accepted = res.body;
    expect(res.body).toMatchObject({ origin: "imported", algorithm: "curve25519", active: false, name: "From GnuPG" });
    const listing = await gpg(["--with-colons", "--fingerprint", res.body.fingerprint]);
    expect(listing).toContain(`fpr:::::::::${res.body.fingerprint}:`);
    const row = await gw.prisma.encryptionKey.findUniqueOrThrow({ where: { id: res.body.id } });
    expect(JSON.stringify(row)).not.toContain("PRIVATE KEY");
  });

  it("takes the same key again with an extended expiry: 200, the same key updated, audited", async () => {
    expect(accepted.expiresAt).toBeNull();
    const passphrase = ["--pinentry-mode", "loopback", "--passphrase", BYO_PASSPHRASE];
    await gpg([...passphrase, "--quick-set-expire", accepted.fingerprint, "2y"]);
    await gpg([...passphrase, "--quick-set-expire", accepted.fingerprint, "2y", "*"]);
    const extended = await gpg(["--armor", "--export", accepted.fingerprint]);
    const res = await gw.call(adminKey, "POST", "/v1/encryption-keys", { publicKey: extended });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: accepted.id, fingerprint: accepted.fingerprint, active: accepted.active, name: "From GnuPG", origin: "imported" });
    expect(new Date(res.body.expiresAt).getTime()).toBeGreaterThan(Date.now() + 700 * DAY_MS);
    const rows = await gw.prisma.encryptionKey.findMany({ where: { tenantId, fingerprint: accepted.fingerprint } });
    expect(rows).toHaveLength(1);
    expect(rows[0]!.expiresAt!.toISOString()).toBe(res.body.expiresAt);
    expect(rows[0]!.publicKey).toBe(res.body.publicKey);
    const audit = await gw.prisma.auditEvent.findFirst({ where: { tenantId, action: "encryption_key.update", targetId: accepted.id }, orderBy: { createdAt: "desc" } });
    expect(audit?.before).toMatchObject({ id: accepted.id, expiresAt: null });
    expect(audit?.after).toMatchObject({ id: accepted.id, expiresAt: res.body.expiresAt });
    expect(JSON.stringify(audit)).not.toContain("PGP");
  });

  it("takes a rotated encryption subkey: files are then encrypted to the new subkey", async () => {
    const passphrase = ["--pinentry-mode", "loopback", "--passphrase", BYO_PASSPHRASE];
    const [old] = await gpgSubkeys(accepted.fingerprint);
    await gpg([...passphrase, "--quick-add-key", accepted.fingerprint, "cv25519", "encr", "2y"]);
    // gpg 2.2 has no one-line command to revoke a subkey: answer --edit-key's prompts.
    await gpg([...passphrase, "--command-fd", "0", "--edit-key", accepted.fingerprint], "key 1\nrevkey\ny\n0\n\ny\nsave\n");
    const subkeys = await gpgSubkeys(accepted.fingerprint);
    expect(subkeys.find((k) => k.fingerprint === old!.fingerprint)?.revoked).toBe(true);
    const fresh = subkeys.find((k) => !k.revoked)!;

    const res = await gw.call(adminKey, "POST", "/v1/encryption-keys", { publicKey: await gpg(["--armor", "--export", accepted.fingerprint]) });
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(accepted.id);
    const row = await gw.prisma.encryptionKey.findUniqueOrThrow({ where: { id: accepted.id } });
    const chunks: Buffer[] = [];
    for await (const chunk of encryptStream(Readable.from([Buffer.from("report")]), row.publicKey)) chunks.push(chunk as Buffer);
    const file = join(gnupgHome, "rotated.pgp");
    await writeFile(file, Buffer.concat(chunks));
    const packets = await gpg([...passphrase, "--list-packets", file]);
    expect(packets).toContain(`keyid ${fresh.fingerprint.slice(-16)}`);
    expect(packets).not.toContain(`keyid ${old!.fingerprint.slice(-16)}`);
    const audit = await gw.prisma.auditEvent.findFirst({ where: { tenantId, action: "encryption_key.update", targetId: accepted.id }, orderBy: { createdAt: "desc" } });
    expect(audit?.before).toMatchObject({ encryptionKeyFingerprint: old!.fingerprint });
    expect(audit?.after).toMatchObject({ encryptionKeyFingerprint: fresh.fingerprint });
  });

  it("takes the identical key again without changing it", async () => {
    const before = await gw.prisma.encryptionKey.findUniqueOrThrow({ where: { id: accepted.id } });
    const res = await gw.call(adminKey, "POST", "/v1/encryption-keys", { publicKey: before.publicKey });
    expect(res.status).toBe(200);
    expect(await gw.prisma.encryptionKey.findUniqueOrThrow({ where: { id: accepted.id } })).toEqual(before);
  });
});

describe("the owner's revocation of a key on the account", () => {
  const noPassphrase = ["--pinentry-mode", "loopback", "--passphrase", ""];
  /** A new GnuPG key (never expires) uploaded to a new tenant, where it is the active key. */
  async function activeGnupgKey(label: string) {
    const other = await gw.createTenant();
    const uid = `${label} ${randomBytes(3).toString("hex")}`;
    await gpg([...noPassphrase, "--quick-gen-key", uid, "future-default", "default", "never"]);
    const exported = await gpg(["--armor", "--export", uid]);
    const first = await gw.call(other.adminKey, "POST", "/v1/encryption-keys", { publicKey: exported });
    expect(first.status).toBe(201);
    expect(first.body.active).toBe(true);
    expect(await openEncryptionAlert(other.tenant.id)).toBeNull();
    return { ...other, exported, key: first.body as { id: string; fingerprint: string; expiresAt: string | null } };
  }

  it("is taken: the revoked key is stored, deactivated and audited, and the setup alert returns", async () => {
    const { adminKey: admin, tenant, exported, key } = await activeGnupgKey("Revoked by owner");
    // gpg keeps a revocation certificate for each key it makes, its armor line escaped with ":".
    const certificate = await readFile(join(gnupgHome, "openpgp-revocs.d", `${key.fingerprint}.rev`), "utf8");
    await gpg(["--import"], certificate.replace(/^:-----BEGIN/m, "-----BEGIN"));
    const revoked = await gpg(["--armor", "--export", key.fingerprint]);

    const res = await gw.call(admin, "POST", "/v1/encryption-keys", { publicKey: revoked });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: key.id, fingerprint: key.fingerprint, active: false, deletedAt: null, expiresAt: key.expiresAt });
    const row = await gw.prisma.encryptionKey.findUniqueOrThrow({ where: { id: key.id } });
    expect(row.active).toBe(false);
    expect(row.publicKey).toBe(res.body.publicKey);
    // What is stored is the revoked key: never encrypted to again.
    await expect(inspectPublicKey(row.publicKey)).rejects.toMatchObject({ code: "key.revoked" });
    expect(await activeKeys(tenant.id)).toHaveLength(0);
    expect(await openEncryptionAlert(tenant.id)).not.toBeNull();
    const audit = await gw.prisma.auditEvent.findFirst({ where: { tenantId: tenant.id, action: "encryption_key.revoke", targetId: key.id } });
    expect(audit?.before).toMatchObject({ id: key.id, active: true });
    expect(audit?.after).toMatchObject({ id: key.id, active: false, encryptionKeyFingerprint: null });

    const activate = await gw.call(admin, "POST", `/v1/encryption-keys/${key.id}/activate`);
    expect(activate.status).toBe(409);
    expect(activate.body.code).toBe("key.revoked");

    // The same revocation again changes nothing; the export from before it cannot undo it.
    for (const again of [revoked, exported]) {
      const repeat = await gw.call(admin, "POST", "/v1/encryption-keys", { publicKey: again });
      expect(repeat.status).toBe(200);
      expect(repeat.body.active).toBe(false);
      expect(await gw.prisma.encryptionKey.findUniqueOrThrow({ where: { id: key.id } })).toEqual(row);
    }
    expect(await gw.prisma.auditEvent.count({ where: { tenantId: tenant.id, action: "encryption_key.revoke" } })).toBe(1);
  });

  it("is taken when it revokes every encryption subkey", async () => {
    const { adminKey: admin, tenant, key } = await activeGnupgKey("Subkey revoked");
    // gpg 2.2 has no one-line command to revoke a subkey: answer --edit-key's prompts.
    await gpg([...noPassphrase, "--command-fd", "0", "--edit-key", key.fingerprint], "key 1\nrevkey\ny\n0\n\ny\nsave\n");
    expect((await gpgSubkeys(key.fingerprint)).every((k) => k.revoked)).toBe(true);
    const res = await gw.call(admin, "POST", "/v1/encryption-keys", { publicKey: await gpg(["--armor", "--export", key.fingerprint]) });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: key.id, active: false });
    await expect(inspectPublicKey(res.body.publicKey)).rejects.toMatchObject({ code: "key.revoked" });
    expect(await activeKeys(tenant.id)).toHaveLength(0);
    expect(await openEncryptionAlert(tenant.id)).not.toBeNull();
  });

  it("is refused for a key that is not on the account, as any unusable key", async () => {
    const other = await gw.createTenant();
    const res = await gw.call(other.adminKey, "POST", "/v1/encryption-keys", { publicKey: await revokedPublicKey() });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("key.revoked");
    expect(await gw.prisma.encryptionKey.count({ where: { tenantId: other.tenant.id } })).toBe(0);
  });
});

describe("a deleted key uploaded again", () => {
  it("is merged with what was stored: an older export does not bring back a revoked subkey", async () => {
    const other = await gw.createTenant();
    const noPassphrase = ["--pinentry-mode", "loopback", "--passphrase", ""];
    const uid = `Rotated ${randomBytes(3).toString("hex")}`;
    await gpg([...noPassphrase, "--quick-gen-key", uid, "future-default", "default", "never"]);
    const older = await gpg(["--armor", "--export", uid]);
    const first = await gw.call(other.adminKey, "POST", "/v1/encryption-keys", { publicKey: older });
    expect(first.status).toBe(201);
    const [old] = await gpgSubkeys(first.body.fingerprint);
    await gpg([...noPassphrase, "--quick-add-key", first.body.fingerprint, "cv25519", "encr", "never"]);
    await gpg([...noPassphrase, "--command-fd", "0", "--edit-key", first.body.fingerprint], "key 1\nrevkey\ny\n0\n\ny\nsave\n");
    const fresh = (await gpgSubkeys(first.body.fingerprint)).find((k) => !k.revoked)!;
    const rotated = await gw.call(other.adminKey, "POST", "/v1/encryption-keys", { publicKey: await gpg(["--armor", "--export", uid]) });
    expect(rotated.status).toBe(200);
    expect((await inspectPublicKey(rotated.body.publicKey)).encryptionKeyFingerprint).toBe(fresh.fingerprint);

    expect((await gw.call(other.adminKey, "DELETE", `/v1/encryption-keys/${first.body.id}`)).status).toBe(200);
    const restored = await gw.call(other.adminKey, "POST", "/v1/encryption-keys", { publicKey: older });
    expect(restored.status).toBe(201);
    expect(restored.body).toMatchObject({ id: first.body.id, active: true, deletedAt: null });
    const row = await gw.prisma.encryptionKey.findUniqueOrThrow({ where: { id: first.body.id } });
    const info = await inspectPublicKey(row.publicKey);
    expect(info.encryptionKeyFingerprint).toBe(fresh.fingerprint);
    expect(info.encryptionKeyFingerprint).not.toBe(old!.fingerprint);
  });

  it("that its stored copy shows revoked is refused like a new revoked key", async () => {
    const other = await gw.createTenant();
    const { publicKey, revoked: revocation } = await keyAndItsRevocation("Deleted revoked");
    const first = await gw.call(other.adminKey, "POST", "/v1/encryption-keys", { publicKey });
    expect(first.status).toBe(201);
    const revoked = await gw.call(other.adminKey, "POST", "/v1/encryption-keys", { publicKey: revocation });
    expect(revoked.status).toBe(200);
    expect((await gw.call(other.adminKey, "DELETE", `/v1/encryption-keys/${first.body.id}`)).status).toBe(200);
    const again = await gw.call(other.adminKey, "POST", "/v1/encryption-keys", { publicKey });
    expect(again.status).toBe(400);
    expect(again.body.code).toBe("key.revoked");
    expect((await gw.prisma.encryptionKey.findUniqueOrThrow({ where: { id: first.body.id } })).deletedAt).not.toBeNull();
  });
});

describe("the expiry of a key with several encryption subkeys", () => {
  /**
   * Made 10 days ago with a never-expiring encryption subkey; a second one added a day ago expires
   * in 2 days. The second is encrypted to now, the first once it has expired: the key never expires.
   */
  const twoSubkeyPublicKey = async () => (await twoSubkeyKey({ secondDays: 3 })).armored;

  it("is the last valid subkey's (never), not the newest subkey's", async () => {
    const other = await gw.createTenant();
    const res = await gw.call(other.adminKey, "POST", "/v1/encryption-keys", { publicKey: await twoSubkeyPublicKey() });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ active: true, expiresAt: null });
    expect(await gw.prisma.alert.count({ where: { tenantId: other.tenant.id, kind: "encryption_key.expiring", resolvedAt: null } })).toBe(0);
  });

  it("is corrected when the same text is uploaded again, even though the text has not changed", async () => {
    const other = await gw.createTenant();
    const publicKey = await twoSubkeyPublicKey();
    const first = await gw.call(other.adminKey, "POST", "/v1/encryption-keys", { publicKey });
    expect(first.status).toBe(201);
    const stale = new Date(Date.now() + 2 * DAY_MS);
    // A row written under the old rule: the newest subkey's expiry.
    await gw.prisma.encryptionKey.update({ where: { id: first.body.id }, data: { expiresAt: stale } });

    const again = await gw.call(other.adminKey, "POST", "/v1/encryption-keys", { publicKey: first.body.publicKey });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ id: first.body.id, expiresAt: null });
    expect((await gw.prisma.encryptionKey.findUniqueOrThrow({ where: { id: first.body.id } })).expiresAt).toBeNull();
    const audit = await gw.prisma.auditEvent.findFirst({ where: { tenantId: other.tenant.id, action: "encryption_key.update", targetId: first.body.id } });
    expect(audit?.before).toMatchObject({ expiresAt: stale.toISOString() });
    expect(audit?.after).toMatchObject({ expiresAt: null });
  });

  it("is corrected when the key is activated, even the already active key", async () => {
    const other = await gw.createTenant();
    const first = await gw.call(other.adminKey, "POST", "/v1/encryption-keys", { publicKey: await twoSubkeyPublicKey() });
    expect(first.body.active).toBe(true);
    const stale = new Date(Date.now() + 2 * DAY_MS);
    await gw.prisma.encryptionKey.update({ where: { id: first.body.id }, data: { expiresAt: stale } });
    const activeAgain = await gw.call(other.adminKey, "POST", `/v1/encryption-keys/${first.body.id}/activate`);
    expect(activeAgain.status).toBe(200);
    expect(activeAgain.body).toMatchObject({ active: true, expiresAt: null });
    expect(await gw.prisma.auditEvent.count({ where: { tenantId: other.tenant.id, action: "encryption_key.update", targetId: first.body.id } })).toBe(1);

    // And activating an inactive key with a stale expiry.
    const second = await gw.call(other.adminKey, "POST", "/v1/encryption-keys", { publicKey: await twoSubkeyPublicKey() });
    expect(second.body.active).toBe(false);
    await gw.prisma.encryptionKey.update({ where: { id: second.body.id }, data: { expiresAt: stale } });
    const activated = await gw.call(other.adminKey, "POST", `/v1/encryption-keys/${second.body.id}/activate`);
    expect(activated.status).toBe(200);
    expect(activated.body).toMatchObject({ active: true, expiresAt: null });
    expect((await gw.prisma.encryptionKey.findUniqueOrThrow({ where: { id: second.body.id } })).expiresAt).toBeNull();
  });
});

describe("what is stored of an uploaded key", () => {
  it("is the key re-armored from its packets, never the text pasted around it", async () => {
    const other = await gw.createTenant();
    const pair = await generateKeyPair({ passphrase: BYO_PASSPHRASE, algorithm: "curve25519" });
    privateKeysSeen.push(pair);
    const pasted = `notes: passphrase hunter2\n\n${pair.publicKey}\nmore notes\n`;
    const res = await gw.call(other.adminKey, "POST", "/v1/encryption-keys", { publicKey: pasted });
    expect(res.status).toBe(201);
    expect(res.body.fingerprint).toBe(pair.fingerprint);
    expect(res.body.publicKey).toMatch(/^-----BEGIN PGP PUBLIC KEY BLOCK-----\n[\s\S]*\n-----END PGP PUBLIC KEY BLOCK-----\n?$/);
    const row = await gw.prisma.encryptionKey.findUniqueOrThrow({ where: { id: res.body.id } });
    const fetched = await gw.call(other.adminKey, "GET", `/v1/encryption-keys/${res.body.id}`);
    for (const text of [res.body.publicKey, row.publicKey, fetched.body.publicKey]) expect(text).not.toContain("hunter2");
    expect(row.publicKey).toBe(res.body.publicKey);
  });
});

describe("a key close to its expiry", () => {
  it("raises an expiring alert, resolved when the extended key is uploaded", async () => {
    const other = await gw.createTenant();
    const uid = `Expiring ${randomBytes(3).toString("hex")}`;
    const noPassphrase = ["--pinentry-mode", "loopback", "--passphrase", ""];
    await gpg([...noPassphrase, "--quick-gen-key", uid, "future-default", "default", "7d"]);
    const first = await gw.call(other.adminKey, "POST", "/v1/encryption-keys", { publicKey: await gpg(["--armor", "--export", uid]) });
    expect(first.status).toBe(201);
    expect(first.body.active).toBe(true);
    const openAlert = () => gw.prisma.alert.findFirst({ where: { tenantId: other.tenant.id, kind: "encryption_key.expiring", resolvedAt: null } });
    expect(await openAlert()).toMatchObject({ dedupeKey: `encryption_key.expiring:${first.body.id}` });

    await gpg([...noPassphrase, "--quick-set-expire", first.body.fingerprint, "2y"]);
    await gpg([...noPassphrase, "--quick-set-expire", first.body.fingerprint, "2y", "*"]);
    const extended = await gw.call(other.adminKey, "POST", "/v1/encryption-keys", { publicKey: await gpg(["--armor", "--export", uid]) });
    expect(extended.status).toBe(200);
    expect(extended.body).toMatchObject({ id: first.body.id, active: true });
    expect(await openAlert()).toBeNull();
  });
});

describe("list, activate, delete", () => {
  it("lists the tenant's keys, newest first, without secrets", async () => {
    const res = await gw.call(adminKey, "GET", "/v1/encryption-keys");
    expect(res.status).toBe(200);
    expect(res.body.items).toHaveLength(3);
    expect(res.body.nextCursor).toBeNull();
    expect(res.body.items.filter((k: { active: boolean }) => k.active)).toHaveLength(1);
    for (const item of res.body.items) {
      expect(Object.keys(item).sort()).toEqual(["active", "algorithm", "bits", "createdAt", "deletedAt", "expiresAt", "fingerprint", "id", "name", "origin"]);
    }
    const paged = await gw.call(adminKey, "GET", "/v1/encryption-keys?limit=2");
    expect(paged.body.items).toHaveLength(2);
    const rest = await gw.call(adminKey, "GET", `/v1/encryption-keys?limit=2&cursor=${paged.body.nextCursor}`);
    expect(rest.body.items).toHaveLength(1);
  });

  it("activates exactly one key at a time", async () => {
    const { body } = await gw.call(adminKey, "GET", "/v1/encryption-keys");
    const inactive = body.items.filter((k: { active: boolean }) => !k.active) as { id: string }[];
    for (const key of inactive) {
      const res = await gw.call(adminKey, "POST", `/v1/encryption-keys/${key.id}/activate`);
      expect(res.status).toBe(200);
      expect(res.body.active).toBe(true);
      const active = await activeKeys();
      expect(active.map((k) => k.id)).toEqual([key.id]);
    }
  });

  it("keeps one active key when activations race", async () => {
    const { body } = await gw.call(adminKey, "GET", "/v1/encryption-keys");
    const results = await Promise.all(body.items.map((k: { id: string }) => gw.call(adminKey, "POST", `/v1/encryption-keys/${k.id}/activate`)));
    expect(results.map((r) => r.status)).toEqual(results.map(() => 200));
    expect(await activeKeys()).toHaveLength(1);
  });

  it("renames a key", async () => {
    const [active] = await activeKeys();
    const res = await gw.call(adminKey, "PATCH", `/v1/encryption-keys/${active!.id}`, { name: "Finance 2026" });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: active!.id, name: "Finance 2026", active: true });
    expect((await gw.call(adminKey, "PATCH", `/v1/encryption-keys/${active!.id}`, { name: "" })).status).toBe(400);
  });

  it("activating the active key again changes nothing", async () => {
    const [active] = await activeKeys();
    const res = await gw.call(adminKey, "POST", `/v1/encryption-keys/${active!.id}/activate`);
    expect(res.status).toBe(200);
    expect(await activeKeys()).toHaveLength(1);
  });

  it("answers 404 for another tenant's key, and a viewer cannot change keys", async () => {
    const other = await gw.createTenant();
    const [mine] = await activeKeys();
    expect((await gw.call(other.adminKey, "POST", `/v1/encryption-keys/${mine!.id}/activate`)).status).toBe(404);
    expect((await gw.call(other.adminKey, "DELETE", `/v1/encryption-keys/${mine!.id}`)).status).toBe(404);
    expect((await gw.call(other.adminKey, "GET", `/v1/encryption-keys/${mine!.id}`)).status).toBe(404);
    const viewer = await gw.call(adminKey, "POST", "/v1/api-keys", { name: "reader", role: "viewer" });
    expect((await gw.call(viewer.body.key, "GET", "/v1/encryption-keys")).status).toBe(200);
    expect((await gw.call(viewer.body.key, "POST", `/v1/encryption-keys/${mine!.id}/activate`)).status).toBe(403);
  });

  it("keeps the active key while enabled tasks encrypt to it", async () => {
    const [active] = await activeKeys();
    const destination = await gw.prisma.destination.create({ data: { tenantId, name: "Managed", kind: "managed", config: {} } });
    const task = await gw.prisma.task.create({
      data: { tenantId, description: "Daily messaging", reportId: "messaging-conversations", format: "csv", frequency: "daily", time: "00:00", destinationId: destination.id, enabled: true },
    });
    const refused = await gw.call(adminKey, "DELETE", `/v1/encryption-keys/${active!.id}`);
    expect(refused.status).toBe(409);
    expect(refused.body.detail).toContain('"Daily messaging"');
    expect(await activeKeys()).toHaveLength(1);
    await gw.prisma.task.update({ where: { id: task.id }, data: { enabled: false } });
  });

  it("soft-deletes keys; with no active key left the setup alert comes back", async () => {
    const [active] = await activeKeys();
    const res = await gw.call(adminKey, "DELETE", `/v1/encryption-keys/${active!.id}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ active: false });
    expect(res.body.deletedAt).not.toBeNull();
    expect(await activeKeys()).toHaveLength(0);
    expect(await openEncryptionAlert()).not.toBeNull();
    const row = await gw.prisma.encryptionKey.findUniqueOrThrow({ where: { id: active!.id } });
    expect(row.deletedAt).toBeInstanceOf(Date);
    const listed = await gw.call(adminKey, "GET", "/v1/encryption-keys");
    expect(listed.body.items.map((k: { id: string }) => k.id)).not.toContain(active!.id);
    expect((await gw.call(adminKey, "POST", `/v1/encryption-keys/${active!.id}/activate`)).status).toBe(404);

    // Activating another key resolves the reminder again.
    const next = listed.body.items[0] as { id: string };
    expect((await gw.call(adminKey, "POST", `/v1/encryption-keys/${next.id}/activate`)).status).toBe(200);
    expect(await openEncryptionAlert()).toBeNull();
  });

  it("restores a deleted key uploaded again", async () => {
    const [active] = await activeKeys();
    await gw.call(adminKey, "DELETE", `/v1/encryption-keys/${active!.id}`);
    const again = await gw.call(adminKey, "POST", "/v1/encryption-keys", { publicKey: active!.publicKey });
    expect(again.status).toBe(201);
    expect(again.body.id).toBe(active!.id);
    expect(again.body.deletedAt).toBeNull();
    expect(again.body.active).toBe(true);
  });
});

describe("secrets", () => {
  it("never reach a log line, a key row or an audit entry", async () => {
    expect(privateKeysSeen.length).toBeGreaterThanOrEqual(4);
    const logs = gw.logs.join("");
    expect(logs).toContain("/v1/encryption-keys");
    const audit = JSON.stringify(await gw.prisma.auditEvent.findMany({ where: { tenantId } }));
    expect(audit).toContain("encryption_key.generate");
    const rows = JSON.stringify(await gw.prisma.encryptionKey.findMany({ where: { tenantId } }));
    for (const place of [logs, audit, rows]) {
      expect(place).not.toContain(PASSPHRASE);
      expect(place).not.toContain(BYO_PASSPHRASE);
      expect(place).not.toContain("PRIVATE KEY");
      for (const pair of privateKeysSeen) {
        const lines = secretLines(pair);
        expect(lines.length).toBeGreaterThan(0);
        for (const line of lines) expect(place).not.toContain(line);
      }
    }
  });
});
