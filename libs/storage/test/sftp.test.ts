import { createHash, randomBytes, randomUUID } from "node:crypto";
import { chown, mkdir, readdir, stat, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import SftpClient from "ssh2-sftp-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSftpAdapter, sftpAdapter as productionAdapter, sftpConfigSchema, sftpConfigSchemaFor, sftpCredentialsSchema } from "../src/destinations/sftp.js";
import { BlockedEndpointError } from "../src/destinations/endpoint-policy.js";
import type { SftpConfig, SftpCredentials } from "../src/destinations/sftp.js";
import { DestinationError } from "../src/errors.js";
import type { DeliveryMeta } from "../src/destinations/types.js";
import { startSshd } from "./support/sshd.js";
import type { SshdServer } from "./support/sshd.js";

/** sshd listens on loopback: the adapter as tests, the demo and the simulator run it. */
const sftpAdapter = createSftpAdapter({ allowInsecureEndpoints: true });
/** The same with a short SFTP request timeout, for servers that stop answering. */
const REQUEST_TIMEOUT_MS = 2_000;
const impatientAdapter = createSftpAdapter({ allowInsecureEndpoints: true }, { requestTimeoutMs: REQUEST_TIMEOUT_MS });

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

function configFor(server: SshdServer, overrides: Partial<SftpConfig> = {}): SftpConfig {
  return sftpConfigSchema.parse({ host: server.host, port: server.port, username: server.username, folder: "drop", ...overrides });
}

function passwordOf(server: SshdServer): SftpCredentials {
  return sftpCredentialsSchema.parse({ password: server.password });
}

function meta(overrides: Partial<DeliveryMeta> = {}): DeliveryMeta {
  return { tenantId: randomUUID(), runId: randomUUID(), ...overrides };
}

/** Random bytes as a stream of 1 MiB chunks. */
function streamOf(data: Buffer): Readable {
  return Readable.from(
    (function* () {
      for (let offset = 0; offset < data.length; offset += 1 << 20) yield data.subarray(offset, offset + (1 << 20));
    })(),
  );
}

async function readBack(server: SshdServer, path: string): Promise<Buffer> {
  const client = new SftpClient("read-back", { error: () => {}, end: () => {}, close: () => {} });
  await client.connect({ host: server.host, port: server.port, username: server.username, password: server.password });
  try {
    return (await client.get(path)) as Buffer;
  } finally {
    await client.end();
  }
}

async function expectFailure(promise: Promise<unknown>): Promise<DestinationError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DestinationError);
  return error as DestinationError;
}

async function verifyError(config: SftpConfig, credentials: SftpCredentials): Promise<DestinationError> {
  const result = await sftpAdapter.verify(config, credentials);
  if (result.ok) throw new Error(`verify unexpectedly succeeded: ${result.details}`);
  return result.error;
}

describe("sftp destination against OpenSSH sshd", () => {
  let server: SshdServer;
  let dropDir: string;

  beforeAll(async () => {
    server = await startSshd();
    dropDir = join(server.home, "drop");
    await mkdir(dropDir);
    await chown(dropDir, server.uid, server.gid);
    // Owned by root: the test user may list it but not write in it.
    await mkdir(join(server.home, "readonly"), { mode: 0o755 });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  describe("verify", () => {
    it("succeeds with a password, pins the host key as OpenSSH prints it and leaves no probe behind", async () => {
      const result = await sftpAdapter.verify(configFor(server), passwordOf(server));
      expect(result.ok).toBe(true);
      if (!result.ok) return;
      expect(result.configUpdates).toEqual({ hostKeyFingerprint: server.hostKeyFingerprint, hostKeyType: "ssh-ed25519", renameAllowed: true });
      expect(result.details).toContain(server.hostKeyFingerprint);
      expect(await readdir(dropDir)).toEqual([]);
    });

    it("succeeds with a private key, plain or with its passphrase", async () => {
      const plain = await sftpAdapter.verify(configFor(server), sftpCredentialsSchema.parse({ privateKey: server.privateKey }));
      expect(plain.ok).toBe(true);
      const encrypted = await sftpAdapter.verify(
        configFor(server),
        sftpCredentialsSchema.parse({ privateKey: server.encryptedPrivateKey, passphrase: server.passphrase }),
      );
      expect(encrypted.ok).toBe(true);
    });

    it("succeeds again with the pinned fingerprint", async () => {
      const result = await sftpAdapter.verify(configFor(server, { hostKeyFingerprint: server.hostKeyFingerprint }), passwordOf(server));
      expect(result.ok).toBe(true);
    });

    it("reports a wrong password as auth, without echoing it", async () => {
      const wrong = `wrong-${randomBytes(8).toString("hex")}`;
      const error = await verifyError(configFor(server), { password: wrong });
      expect(error.code).toBe("auth");
      expect(error.permanent).toBe(true);
      expect(error.message).toContain(server.username);
      expect(error.message).not.toContain(wrong);
    });

    it("reports a wrong key passphrase as auth, without echoing it", async () => {
      const error = await verifyError(configFor(server), { privateKey: server.encryptedPrivateKey, passphrase: "not-the-passphrase" });
      expect(error.code).toBe("auth");
      expect(error.message).not.toContain("not-the-passphrase");
      expect(error.message).not.toContain("PRIVATE KEY");
    });

    it("reports an unknown host as dns", async () => {
      const error = await verifyError(configFor(server, { host: "no-such-host.invalid" }), passwordOf(server));
      expect(error.code).toBe("dns");
      expect(error.message).toContain("no-such-host.invalid");
    });

    it("reports a closed port as connect", async () => {
      const closed = await import("node:net").then(
        (net) =>
          new Promise<number>((resolve) => {
            const probe = net.createServer().listen(0, "127.0.0.1", () => {
              const address = probe.address();
              probe.close(() => resolve(typeof address === "object" && address ? address.port : 1));
            });
          }),
      );
      const error = await verifyError(configFor(server, { port: closed }), passwordOf(server));
      expect(error.code).toBe("connect");
      expect(error.permanent).toBe(false);
    });

    it("reports a missing folder as not_found", async () => {
      const error = await verifyError(configFor(server, { folder: "no/such/folder" }), passwordOf(server));
      expect(error.code).toBe("not_found");
      expect(error.message).toContain("no/such/folder");
    });

    it("reports a folder without write permission as permission", async () => {
      const error = await verifyError(configFor(server, { folder: "readonly" }), passwordOf(server));
      expect(error.code).toBe("permission");
      expect(error.permanent).toBe(true);
      expect(await readdir(join(server.home, "readonly"))).toEqual([]);
    });
  });

  describe("deliver", () => {
    it("delivers a 50 MB file byte-identical into created subfolders, with no temporary file left", async () => {
      const data = randomBytes(50 * 1024 * 1024);
      const result = await sftpAdapter.deliver(
        streamOf(data),
        "big.csv.pgp",
        meta({ subfolder: "2026/11/22", expectedBytes: data.length }),
        configFor(server, { hostKeyFingerprint: server.hostKeyFingerprint }),
        passwordOf(server),
      );
      expect(result).toEqual({ path: join(dropDir, "2026/11/22/big.csv.pgp"), bytes: data.length, checksum: sha256(data), notes: [] });
      const copy = await readBack(server, result.path);
      expect(copy.length).toBe(data.length);
      expect(sha256(copy)).toBe(sha256(data));
      expect(await readdir(join(dropDir, "2026/11/22"))).toEqual(["big.csv.pgp"]);
    }, 120_000);

    it("delivers an empty file", async () => {
      const result = await sftpAdapter.deliver(
        Readable.from([]),
        "empty.csv.pgp",
        meta({ expectedBytes: 0 }),
        configFor(server, { hostKeyFingerprint: server.hostKeyFingerprint }),
        sftpCredentialsSchema.parse({ privateKey: server.privateKey }),
      );
      expect(result.bytes).toBe(0);
      expect(result.checksum).toBe(sha256(Buffer.alloc(0)));
      expect((await readBack(server, result.path)).length).toBe(0);
    });

    it("replaces an earlier copy when the same file is delivered again", async () => {
      const config = configFor(server, { hostKeyFingerprint: server.hostKeyFingerprint, folder: "drop/again" });
      const first = randomBytes(4096);
      const second = randomBytes(7000);
      const runId = randomUUID();
      await sftpAdapter.deliver(streamOf(first), "same.csv", meta({ runId }), config, passwordOf(server));
      const result = await sftpAdapter.deliver(streamOf(second), "same.csv", meta({ runId }), config, passwordOf(server));
      expect(sha256(await readBack(server, result.path))).toBe(sha256(second));
      expect(await readdir(join(dropDir, "again"))).toEqual(["same.csv"]);
    });

    it("refuses a file whose size differs from the expected one and leaves nothing visible", async () => {
      const config = configFor(server, { hostKeyFingerprint: server.hostKeyFingerprint, folder: "drop/short" });
      const error = await expectFailure(
        sftpAdapter.deliver(streamOf(randomBytes(1000)), "short.csv", meta({ expectedBytes: 2000 }), config, passwordOf(server)),
      );
      expect(error.code).toBe("verification_failed");
      expect(await readdir(join(dropDir, "short"))).toEqual([]);
    });

    it("removes its temporary file when the input fails midway and keeps the final name free", async () => {
      const config = configFor(server, { hostKeyFingerprint: server.hostKeyFingerprint, folder: "drop/input-error" });
      const broken = Readable.from(
        (async function* () {
          yield randomBytes(3 * 1024 * 1024);
          throw new Error("staging read failed");
        })(),
      );
      await expect(sftpAdapter.deliver(broken, "partial.csv", meta(), config, passwordOf(server))).rejects.toThrow("staging read failed");
      expect(await readdir(join(dropDir, "input-error"))).toEqual([]);
    });

    it("a body that fails while the connection is made: the delivery rejects with its error, nothing uncaught, nothing left", async () => {
      const config = configFor(server, { hostKeyFingerprint: server.hostKeyFingerprint, folder: "drop/early-error" });
      const body = new PassThrough();
      const delivery = sftpAdapter.deliver(body, "early.csv", meta(), config, passwordOf(server));
      body.destroy(new Error("staging read failed at once"));
      await expect(delivery).rejects.toThrow("staging read failed at once");
      expect(await readdir(join(dropDir, "early-error")).catch(() => [])).toEqual([]);
    });

    it("shows no partial file when the connection is cut mid-upload, and the retry delivers one complete copy", async () => {
      const config = configFor(server, { hostKeyFingerprint: server.hostKeyFingerprint, folder: "drop/cut" });
      const data = randomBytes(16 * 1024 * 1024);
      const runId = randomUUID();
      let killed = 0;
      const cutHalfway = Readable.from(
        (async function* () {
          const half = data.length / 2;
          for (let offset = 0; offset < half; offset += 1 << 20) yield data.subarray(offset, offset + (1 << 20));
          killed = await server.killSessions();
          await new Promise((resolve) => setTimeout(resolve, 300));
          for (let offset = half; offset < data.length; offset += 1 << 20) yield data.subarray(offset, offset + (1 << 20));
        })(),
      );
      const error = await expectFailure(sftpAdapter.deliver(cutHalfway, "cut.csv.pgp", meta({ runId }), config, passwordOf(server)));
      expect(killed).toBeGreaterThan(0);
      expect(error.permanent).toBe(false);
      expect((await readdir(join(dropDir, "cut"))).filter((name) => !name.startsWith("."))).toEqual([]);

      const result = await sftpAdapter.deliver(streamOf(data), "cut.csv.pgp", meta({ runId }), config, passwordOf(server));
      expect(sha256(await readBack(server, result.path))).toBe(sha256(data));
      expect(await readdir(join(dropDir, "cut"))).toEqual(["cut.csv.pgp"]);
    }, 60_000);

    it("delivers a file whose name is 250 bytes long through the temporary name and rename", async () => {
      const config = configFor(server, { hostKeyFingerprint: server.hostKeyFingerprint, folder: "drop/long-name" });
      const fileName = `${"r".repeat(242)}.csv.pgp`;
      expect(Buffer.byteLength(fileName)).toBe(250);
      const data = randomBytes(300 * 1024);
      const result = await sftpAdapter.deliver(streamOf(data), fileName, meta({ expectedBytes: data.length }), config, passwordOf(server));
      expect(result.path).toBe(join(dropDir, "long-name", fileName));
      expect(result.notes).toEqual([]);
      expect(sha256(await readBack(server, result.path))).toBe(sha256(data));
      expect(await readdir(join(dropDir, "long-name"))).toEqual([fileName]);
    });

    it("fails fast as permission when the folder is not writable", async () => {
      const error = await expectFailure(
        sftpAdapter.deliver(
          streamOf(randomBytes(10)),
          "x.csv",
          meta(),
          configFor(server, { hostKeyFingerprint: server.hostKeyFingerprint, folder: "readonly" }),
          passwordOf(server),
        ),
      );
      expect(error.code).toBe("permission");
      expect(error.permanent).toBe(true);
    });

    it("refuses a changed host key, naming both fingerprints, and sends nothing", async () => {
      const pinned = server.hostKeyFingerprint;
      const config = configFor(server, { hostKeyFingerprint: pinned, folder: "drop/rekeyed" });
      await server.replaceHostKey();
      expect(server.hostKeyFingerprint).not.toBe(pinned);

      const error = await verifyError(config, passwordOf(server));
      expect(error.code).toBe("host_key_changed");
      expect(error.permanent).toBe(true);
      expect(error.message).toContain(pinned);
      expect(error.message).toContain(server.hostKeyFingerprint);

      const refused = await expectFailure(sftpAdapter.deliver(streamOf(randomBytes(100)), "x.csv", meta(), config, passwordOf(server)));
      expect(refused.code).toBe("host_key_changed");
      expect(await readdir(dropDir)).not.toContain("rekeyed");
    }, 60_000);
  });
});

describe("sftp destination whose server adds a host key of another type", () => {
  let server: SshdServer;

  beforeAll(async () => {
    // Pinned while the server has only an RSA key.
    server = await startSshd({ hostKeyTypes: ["rsa"] });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  it("pins the RSA key with its type, and learns the type of a pin made without one", async () => {
    const result = await sftpAdapter.verify(configFor(server, { folder: "." }), passwordOf(server));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.configUpdates).toEqual({ hostKeyFingerprint: server.hostKeyFingerprints.rsa, hostKeyType: "ssh-rsa", renameAllowed: true });

    // A pin saved before types were recorded: checked as before, and its type is learned.
    const legacy = await sftpAdapter.verify(configFor(server, { folder: ".", hostKeyFingerprint: server.hostKeyFingerprints.rsa }), passwordOf(server));
    expect(legacy.ok).toBe(true);
    if (legacy.ok) expect(legacy.configUpdates).toMatchObject({ hostKeyFingerprint: server.hostKeyFingerprints.rsa, hostKeyType: "ssh-rsa" });
  });

  it("keeps delivering to the pinned RSA key after an ed25519 key (which ssh2 prefers) is added", async () => {
    const verified = await sftpAdapter.verify(configFor(server, { folder: "." }), passwordOf(server));
    if (!verified.ok) throw verified.error;
    const config = configFor(server, { folder: ".", ...verified.configUpdates });
    const rsa = server.hostKeyFingerprints.rsa;

    await server.offerHostKeys(["rsa", "ed25519"]);
    expect(server.hostKeyFingerprints.rsa).toBe(rsa);
    // Unpinned, the server now shows its ed25519 key.
    const fresh = await sftpAdapter.verify(configFor(server, { folder: "." }), passwordOf(server));
    expect(fresh.ok && fresh.configUpdates).toMatchObject({ hostKeyFingerprint: server.hostKeyFingerprints.ed25519 });

    const data = randomBytes(100_000);
    const result = await sftpAdapter.deliver(streamOf(data), "added-key.csv.pgp", meta(), config, passwordOf(server));
    expect(result.notes).toEqual([]);
    expect(sha256(await readBack(server, result.path))).toBe(sha256(data));
    const again = await sftpAdapter.verify(config, passwordOf(server));
    expect(again.ok && again.configUpdates).toMatchObject({ hostKeyFingerprint: rsa, hostKeyType: "ssh-rsa" });
  }, 60_000);

  it("refuses a changed key of the pinned type, and a server that no longer offers that type, sending nothing", async () => {
    await server.offerHostKeys(["rsa", "ed25519"]);
    const verified = await sftpAdapter.verify(configFor(server, { folder: "." }), passwordOf(server));
    if (!verified.ok) throw verified.error;
    const pinned = server.hostKeyFingerprints.ed25519!;
    expect(verified.configUpdates).toMatchObject({ hostKeyFingerprint: pinned, hostKeyType: "ssh-ed25519" });
    const config = configFor(server, { folder: ".", ...verified.configUpdates });
    const before = await readdir(server.home);

    // The ed25519 key replaced, the RSA key unchanged: the pinned key is gone.
    await server.replaceHostKey("ed25519");
    expect(server.hostKeyFingerprints.ed25519).not.toBe(pinned);
    const changed = await expectFailure(sftpAdapter.deliver(streamOf(randomBytes(100)), "changed.csv.pgp", meta(), config, passwordOf(server)));
    expect(changed.code).toBe("host_key_changed");
    expect(changed.permanent).toBe(true);
    expect(changed.message).toContain(pinned);
    expect(changed.message).toContain(server.hostKeyFingerprints.ed25519);

    // Only the RSA key left: no key of the pinned type at all.
    await server.offerHostKeys(["rsa"]);
    const gone = await expectFailure(sftpAdapter.deliver(streamOf(randomBytes(100)), "gone.csv.pgp", meta(), config, passwordOf(server)));
    expect(gone.code).toBe("host_key_changed");
    expect(gone.permanent).toBe(true);
    expect(gone.message).toContain(pinned);
    expect(gone.message).toContain("(a ssh-ed25519 key), the server no longer offers a key of that type");
    expect(await readdir(server.home)).toEqual(before);
  }, 60_000);
});

describe("sftp destination when the server forbids rename", () => {
  let server: SshdServer;

  beforeAll(async () => {
    server = await startSshd({ denyRename: true });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  it("verifies, and learns that files go directly to their final name", async () => {
    const result = await sftpAdapter.verify(configFor(server, { folder: "." }), passwordOf(server));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.configUpdates).toEqual({ hostKeyFingerprint: server.hostKeyFingerprint, hostKeyType: "ssh-ed25519", renameAllowed: false });
    expect(result.details).toContain("forbids rename");
    expect(await readdir(server.home)).toEqual([]);
  });

  it("falls back to a direct upload with a note when rename is refused during delivery", async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const result = await sftpAdapter.deliver(streamOf(data), "fallback.csv.pgp", meta(), configFor(server, { folder: "." }), passwordOf(server));
    expect(result.notes.some((note) => note.includes("server forbids rename: uploaded directly"))).toBe(true);
    expect(sha256(await readBack(server, result.path))).toBe(sha256(data));
    expect(await readdir(server.home)).toEqual(["fallback.csv.pgp"]);
  });

  it("uploads directly when verification already learned that rename is forbidden", async () => {
    const data = randomBytes(2 * 1024 * 1024);
    const config = configFor(server, { folder: "direct", hostKeyFingerprint: server.hostKeyFingerprint, renameAllowed: false });
    const result = await sftpAdapter.deliver(streamOf(data), "direct.csv.pgp", meta(), config, passwordOf(server));
    expect(result.notes).toEqual(["server forbids rename: uploaded directly to the final name"]);
    expect(sha256(await readBack(server, result.path))).toBe(sha256(data));
    expect(await readdir(join(server.home, "direct"))).toEqual(["direct.csv.pgp"]);
  });
});

describe("sftp destination on a server without posix-rename (rename refuses an existing file)", () => {
  let server: SshdServer;
  let failing: SshdServer;

  beforeAll(async () => {
    [server, failing] = await Promise.all([startSshd({ plainRenameOnly: {} }), startSshd({ plainRenameOnly: { failRetriedRename: true } })]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([server?.stop(), failing?.stop()]);
  });

  it("delivers a file again over the earlier one: the new content in place, nothing left beside it", async () => {
    const [first, second] = [randomBytes(64 * 1024), randomBytes(80 * 1024 + 3)];
    const config = configFor(server, { folder: "." });
    await sftpAdapter.deliver(streamOf(first), "again.csv.pgp", meta(), config, passwordOf(server));
    const result = await sftpAdapter.deliver(streamOf(second), "again.csv.pgp", meta(), config, passwordOf(server));
    expect(sha256(await readBack(server, result.path))).toBe(sha256(second));
    expect(await readdir(server.home)).toEqual(["again.csv.pgp"]);
  });

  it("never replaces a folder of the file's name: the delivery fails and the folder stays as it was (with posix-rename too)", async () => {
    const plain = await startSshd();
    try {
      for (const host of [server, plain]) {
        await mkdir(join(host.home, "clash.csv"));
        await chown(join(host.home, "clash.csv"), host.uid, host.gid);
        await expectFailure(sftpAdapter.deliver(streamOf(randomBytes(1024)), "clash.csv", meta(), configFor(host, { folder: "." }), passwordOf(host)));
        expect((await readdir(host.home)).filter((name) => name !== "again.csv.pgp")).toEqual(["clash.csv"]);
        expect((await stat(join(host.home, "clash.csv"))).isDirectory()).toBe(true);
      }
    } finally {
      await plain.stop();
    }
  });

  it("removes the earlier file an attempt cut off while replacing left aside, once the file is in place", async () => {
    const runId = randomUUID();
    // What a crash between moving the old file aside and renaming the new one in leaves.
    await writeFile(join(server.home, `.tp-${runId}.old`), "earlier");
    const data = randomBytes(4096);
    const result = await sftpAdapter.deliver(streamOf(data), "recovered.csv.pgp", meta({ runId }), configFor(server, { folder: "." }), passwordOf(server));
    expect(sha256(await readBack(server, result.path))).toBe(sha256(data));
    expect((await readdir(server.home)).filter((name) => name.startsWith(".tp-"))).toEqual([]);
  });

  it("a failure while replacing the earlier file leaves the earlier file in place: the name never loses the file it had", async () => {
    const [first, second] = [randomBytes(64 * 1024), randomBytes(80 * 1024 + 3)];
    const config = configFor(failing, { folder: "." });
    // Run ids apart, so each delivery's session counts its own renames.
    const earlier = await sftpAdapter.deliver(streamOf(first), "kept.csv.pgp", meta(), config, passwordOf(failing));
    await expectFailure(sftpAdapter.deliver(streamOf(second), "kept.csv.pgp", meta(), config, passwordOf(failing)));
    expect(sha256(await readBack(failing, earlier.path))).toBe(sha256(first));
    expect(await readdir(failing.home)).toEqual(["kept.csv.pgp"]);
  });
});

describe("sftp hosts without ALLOW_INSECURE_ENDPOINTS", () => {
  let server: SshdServer;

  beforeAll(async () => {
    server = await startSshd();
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  it("refuses hosts in this service's own network when settings are saved", () => {
    const secure = sftpConfigSchemaFor({ allowInsecureEndpoints: false });
    for (const host of ["127.0.0.1", "localhost", "10.0.0.5", "169.254.169.254", "::1", "[::1]", "0.0.0.0"]) {
      const result = secure.safeParse({ host, username: "u" });
      expect(result.success, host).toBe(false);
      expect(result.error?.issues[0]?.path, host).toEqual(["host"]);
    }
    expect(secure.safeParse({ host: "sftp.example.com", username: "u" }).success).toBe(true);
    expect(secure.safeParse({ host: "203.0.113.7", username: "u" }).success).toBe(true);
  });

  it("verify and deliver refuse a loopback host, and a name resolving into our network, without connecting", async () => {
    for (const host of [server.host, hostname()]) {
      const config = configFor(server, { host });
      const result = await productionAdapter.verify(config, passwordOf(server));
      expect(result.ok, host).toBe(false);
      const error = (result as { error: DestinationError }).error;
      expect(error, host).toBeInstanceOf(BlockedEndpointError);
      expect(error).toMatchObject({ code: "connect", permanent: true, field: "config.host" });
      expect(error.message).toContain("own network");

      const body = Readable.from([randomBytes(100)]);
      await expect(productionAdapter.deliver(body, "x.csv", meta(), config, passwordOf(server))).rejects.toMatchObject({ code: "connect", permanent: true });
      expect(body.destroyed).toBe(true);
    }
  });
});

/** `data` as 1 MiB chunks, running `midway` (awaited) once half of it has been handed out. */
function streamWithPause(data: Buffer, midway: () => Promise<void>): Readable {
  return Readable.from(
    (async function* () {
      const half = data.length / 2;
      for (let offset = 0; offset < half; offset += 1 << 20) yield data.subarray(offset, offset + (1 << 20));
      await midway();
      for (let offset = half; offset < data.length; offset += 1 << 20) yield data.subarray(offset, offset + (1 << 20));
    })(),
  );
}

/** How long `promise` takes to settle, and its rejection (a fulfilment fails the test). */
async function timedFailure(promise: Promise<unknown>): Promise<{ error: DestinationError; ms: number }> {
  const started = Date.now();
  const error = await expectFailure(promise);
  return { error, ms: Date.now() - started };
}

describe("sftp destination whose server takes the whole file's time to rename (object storage behind SFTP)", () => {
  const RENAME_MS = 3_500;
  let server: SshdServer;

  beforeAll(async () => {
    server = await startSshd({ slowRenameMs: RENAME_MS });
    await mkdir(join(server.home, "drop"));
    await chown(join(server.home, "drop"), server.uid, server.gid);
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  it("waits for a rename as long as the file's size allows, past the plain request limit; a limit that does not scale gives up", async () => {
    const data = randomBytes(4 * 1024 * 1024);
    const config = configFor(server, { hostKeyFingerprint: server.hostKeyFingerprint, folder: "drop" });
    // 2 s for any request, plus 2 s for this file at 2 MiB/s: more than the server's 3.5 s rename.
    const patient = createSftpAdapter({ allowInsecureEndpoints: true }, { requestTimeoutMs: REQUEST_TIMEOUT_MS, wholeFileBytesPerSecond: 2 * 1024 * 1024 });
    const result = await patient.deliver(streamOf(data), "copied.csv.pgp", meta(), config, passwordOf(server));
    expect(sha256(await readBack(server, result.path))).toBe(sha256(data));

    // The same server with only the plain limit for the rename: the connection is dropped as a
    // timeout, and every retry would be (the server may still finish that rename: a whole file).
    const impatient = createSftpAdapter({ allowInsecureEndpoints: true }, { requestTimeoutMs: REQUEST_TIMEOUT_MS, wholeFileBytesPerSecond: 1024 ** 4 });
    const { error } = await timedFailure(impatient.deliver(streamOf(data), "dropped.csv.pgp", meta(), config, passwordOf(server)));
    expect(error.code).toBe("timeout");
    expect(error.permanent).toBe(false);
  }, 60_000);
});

describe("sftp destination when the SFTP server process stops answering or dies (sshd stays up)", () => {
  let server: SshdServer;
  let dropDir: string;

  beforeAll(async () => {
    server = await startSshd({ sftpServer: "process" });
    dropDir = join(server.home, "drop");
    await mkdir(dropDir);
    await chown(dropDir, server.uid, server.gid);
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  it("fails a delivery as a retryable timeout when the sftp-server freezes mid-upload", async () => {
    const config = configFor(server, { hostKeyFingerprint: server.hostKeyFingerprint, folder: "drop/frozen" });
    let frozen: number[] = [];
    const body = streamWithPause(randomBytes(16 * 1024 * 1024), async () => {
      frozen = await server.signalSftpServers("SIGSTOP");
    });
    try {
      const { error, ms } = await timedFailure(impatientAdapter.deliver(body, "frozen.csv.pgp", meta(), config, passwordOf(server)));
      expect(frozen.length).toBeGreaterThan(0);
      expect(error.code).toBe("timeout");
      expect(error.permanent).toBe(false);
      expect(error.message).toContain(`${server.host}:${server.port}`);
      expect(ms).toBeLessThan(REQUEST_TIMEOUT_MS + 8_000);
      expect(body.destroyed).toBe(true);
    } finally {
      for (const pid of frozen) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
    }
  }, 30_000);

  it("fails a delivery at once, retryable, when the sftp-server is killed mid-upload; the retry delivers one complete copy", async () => {
    const config = configFor(server, { hostKeyFingerprint: server.hostKeyFingerprint, folder: "drop/killed" });
    const data = randomBytes(16 * 1024 * 1024);
    const runId = randomUUID();
    let killed: number[] = [];
    const body = streamWithPause(data, async () => {
      killed = await server.signalSftpServers("SIGKILL");
      await new Promise((resolve) => setTimeout(resolve, 200));
    });
    // The default request timeout (60 s): a dead channel must fail the delivery without waiting for it.
    const { error, ms } = await timedFailure(sftpAdapter.deliver(body, "killed.csv.pgp", meta({ runId }), config, passwordOf(server)));
    expect(killed.length).toBeGreaterThan(0);
    expect(error.permanent).toBe(false);
    expect(ms).toBeLessThan(10_000);
    // At most a hidden temporary file is left (the channel was gone, so it could not be removed).
    expect((await readdir(join(dropDir, "killed"))).filter((name) => !name.startsWith("."))).toEqual([]);

    const result = await sftpAdapter.deliver(streamOf(data), "killed.csv.pgp", meta({ runId }), config, passwordOf(server));
    expect(sha256(await readBack(server, result.path))).toBe(sha256(data));
    expect(await readdir(join(dropDir, "killed"))).toEqual(["killed.csv.pgp"]);
  }, 30_000);

  it("verifies and delivers normally through a stand-alone sftp-server", async () => {
    const verified = await impatientAdapter.verify(configFor(server), passwordOf(server));
    expect(verified.ok).toBe(true);
    const data = randomBytes(2 * 1024 * 1024 + 5);
    const result = await impatientAdapter.deliver(streamOf(data), "plain.csv.pgp", meta(), configFor(server, { folder: "drop/plain" }), passwordOf(server));
    expect(sha256(await readBack(server, result.path))).toBe(sha256(data));
    expect(await readdir(join(dropDir, "plain"))).toEqual(["plain.csv.pgp"]);
  }, 30_000);
});

describe("sftp destination when the server never answers on the SFTP channel", () => {
  let server: SshdServer;

  beforeAll(async () => {
    server = await startSshd({ sftpServer: "mute" });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  it("verify fails as a retryable timeout instead of waiting for the SFTP session forever", async () => {
    const started = Date.now();
    const result = await impatientAdapter.verify(configFor(server, { folder: "." }), passwordOf(server));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toBeInstanceOf(DestinationError);
    expect(result.error.code).toBe("timeout");
    expect(result.error.permanent).toBe(false);
    expect(Date.now() - started).toBeLessThan(REQUEST_TIMEOUT_MS + 8_000);
  }, 30_000);

  it("deliver fails as a retryable timeout and releases the body", async () => {
    const body = Readable.from([randomBytes(100)]);
    const { error, ms } = await timedFailure(impatientAdapter.deliver(body, "x.csv", meta(), configFor(server, { folder: "." }), passwordOf(server)));
    expect(error.code).toBe("timeout");
    expect(error.permanent).toBe(false);
    expect(ms).toBeLessThan(REQUEST_TIMEOUT_MS + 8_000);
    expect(body.destroyed).toBe(true);
  }, 30_000);
});
