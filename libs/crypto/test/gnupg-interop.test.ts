import { createHash, randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decryptStream, encryptStream, generateKeyPair, inspectPublicKey, proveKeyPair, RecipientKeyCache } from "../src/index.js";
import type { GeneratedKeyPair } from "../src/index.js";
import { createGnupgHome, fingerprintFromColons } from "./support/gnupg.js";
import type { GnupgHome } from "./support/gnupg.js";
import { chunked, collect } from "./support/streams.js";

// GnuPG is the judge: everything we encrypt must come back byte-identical from `gpg --decrypt`.

const PASSPHRASE = `Interop ${randomBytes(6).toString("hex")} passphrase`;

/** Bytes that are not valid UTF-8 (lone continuation bytes, 0xFF, NUL, CR/LF mixes). */
function nonUtf8Binary(): Buffer {
  const pattern = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0xc3, 0x28, 0x0d, 0x0a, 0x0a, 0x0d, 0xa0, 0xa1, 0xf0, 0x28, 0x8c, 0xbc]);
  return Buffer.concat([pattern, randomBytes(4096), pattern]);
}

const inputs: { name: string; make: () => Buffer }[] = [
  { name: "empty", make: () => Buffer.alloc(0) },
  { name: "1 byte", make: () => Buffer.from([0x42]) },
  { name: "non-UTF-8 binary", make: nonUtf8Binary },
  // Half random, half repetitive CSV: exercises both incompressible and compressible data.
  {
    name: "multi-megabyte",
    make: () => Buffer.concat([randomBytes(2 * 1024 * 1024), Buffer.from("2026-01-01T00:00:00Z,conv-1,agent,\"a, b\",1.5\r\n".repeat(60_000))]),
  },
];

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

let home: GnupgHome;
const keys = new Map<string, GeneratedKeyPair>();

beforeAll(async () => {
  home = await createGnupgHome();
  for (const algorithm of ["rsa-2048", "curve25519"] as const) {
    const pair = await generateKeyPair({ passphrase: PASSPHRASE, algorithm, name: `Interop ${algorithm}` });
    keys.set(algorithm, pair);
    // Importing the generated private key proves GnuPG 2.2 can read our key format and S2K.
    await home.gpgWithPassphrase(PASSPHRASE, ["--import", await tempFile(`${algorithm}.sec.asc`, pair.privateKey)]);
  }
});

afterAll(async () => {
  await home?.close();
});

async function tempFile(name: string, contents: string | Buffer): Promise<string> {
  const path = join(home.dir, name);
  await writeFile(path, contents);
  return path;
}

async function gpgDecrypt(ciphertext: Buffer, passphrase = PASSPHRASE): Promise<Buffer> {
  const name = randomBytes(6).toString("hex");
  const input = await tempFile(`${name}.in`, ciphertext);
  const output = join(home.dir, `${name}.out`);
  await home.gpgWithPassphrase(passphrase, ["--output", output, "--decrypt", input]);
  return readFile(output);
}

describe.each(["rsa-2048", "curve25519"] as const)("%s key: gpg --decrypt reads our output", (algorithm) => {
  describe.each([
    { armor: false, compression: true },
    { armor: false, compression: false },
    { armor: true, compression: true },
    { armor: true, compression: false },
  ])("armor=$armor compression=$compression", ({ armor, compression }) => {
    it.each(inputs)("$name", async ({ make }) => {
      const plaintext = make();
      const pair = keys.get(algorithm)!;
      const ciphertext = await collect(encryptStream(chunked(plaintext), pair.publicKey, { armor, compression }));
      if (armor) expect(ciphertext.toString("latin1")).toMatch(/^-----BEGIN PGP MESSAGE-----/);
      else expect(ciphertext[0]! & 0x80).toBe(0x80);
      const decrypted = await gpgDecrypt(ciphertext);
      expect(decrypted.length).toBe(plaintext.length);
      expect(sha256(decrypted)).toBe(sha256(plaintext));
    });
  });
});

describe("packets GnuPG 2.2 understands", () => {
  it("uses a v3 PKESK, SEIPD v1 with MDC, AES-256 and ZLIB", async () => {
    const pair = keys.get("rsa-2048")!;
    const ciphertext = await collect(encryptStream(chunked(Buffer.from("hello, packets\n")), pair.publicKey));
    const path = await tempFile("packets.pgp", ciphertext);
    const { stdout, stderr } = await home.gpgWithPassphrase(PASSPHRASE, ["--list-packets", "--verbose", path]);
    const listing = stdout.toString("utf8") + stderr;
    expect(listing).toMatch(/:pubkey enc packet: version 3/);
    expect(listing).toMatch(/:encrypted data packet:[\s\S]*mdc_method: 2/);
    expect(listing).toMatch(/AES256/);
    expect(listing).toMatch(/:compressed packet: algo=2/);
    // The packet GnuPG names an AEAD message by; a bare /aead/ would also match a random key id.
    expect(listing).not.toMatch(/:aead encrypted packet:/);
  });

  it("leaves out the compressed packet when compression is off", async () => {
    const pair = keys.get("curve25519")!;
    const ciphertext = await collect(encryptStream(chunked(Buffer.from("plain literal\n")), pair.publicKey, { compression: false }));
    const path = await tempFile("plain.pgp", ciphertext);
    const { stdout } = await home.gpgWithPassphrase(PASSPHRASE, ["--list-packets", path]);
    expect(stdout.toString("utf8")).toMatch(/:literal data packet:/);
    expect(stdout.toString("utf8")).not.toMatch(/:compressed packet:/);
  });
});

describe("a key made by gpg --quick-gen-key, brought as our own", () => {
  const byoPassphrase = `Gpg made ${randomBytes(4).toString("hex")} key`;
  let publicKey: string;
  let privateKey: string;
  let fingerprint: string;

  beforeAll(async () => {
    const uid = `Customer ${randomBytes(3).toString("hex")} <customer@example.com>`;
    await home.gpgWithPassphrase(byoPassphrase, ["--quick-gen-key", uid, "default", "default", "never"]);
    const listing = await home.gpg(["--with-colons", "--list-keys", uid]);
    fingerprint = fingerprintFromColons(listing.stdout.toString("utf8"));
    publicKey = (await home.gpg(["--armor", "--export", fingerprint])).stdout.toString("utf8");
    privateKey = (await home.gpgWithPassphrase(byoPassphrase, ["--armor", "--export-secret-keys", fingerprint])).stdout.toString("utf8");
  });

  it("is accepted, with GnuPG's fingerprint", async () => {
    const info = await inspectPublicKey(publicKey);
    expect(info.fingerprint).toBe(fingerprint);
    expect(info.algorithm).toBe("rsa");
    expect(info.bits).toBeGreaterThanOrEqual(2048);
  });

  it("passes the private-key proof with its passphrase, and fails it without", async () => {
    await expect(proveKeyPair(publicKey, privateKey, byoPassphrase)).resolves.toBeUndefined();
    await expect(proveKeyPair(publicKey, privateKey, "not the passphrase!")).rejects.toMatchObject({ code: "private_key.wrong_passphrase" });
  });

  it("encrypts end to end: gpg decrypts our output", async () => {
    const plaintext = nonUtf8Binary();
    const ciphertext = await collect(encryptStream(chunked(plaintext), publicKey));
    expect(sha256(await gpgDecrypt(ciphertext, byoPassphrase))).toBe(sha256(plaintext));
  });

  it.each([
    { armor: false, compression: "zlib" },
    { armor: true, compression: "zip" },
    { armor: false, compression: "bzip2" },
    { armor: false, compression: "none" },
  ])("decrypts what gpg --encrypt produced (armor=$armor, $compression)", async ({ armor, compression }) => {
    const plaintext = Buffer.concat([nonUtf8Binary(), Buffer.from("a,b,c\n".repeat(50_000))]);
    const source = await tempFile(`gpg-plain-${compression}.bin`, plaintext);
    const output = join(home.dir, `gpg-encrypted-${compression}-${armor}.out`);
    await home.gpg([
      "--trust-model", "always", "--compress-algo", compression,
      ...(armor ? ["--armor"] : []),
      "--output", output, "--recipient", fingerprint, "--encrypt", source,
    ]);
    const decrypted = await collect(await decryptStream(chunked(await readFile(output), 1000), privateKey, byoPassphrase));
    expect(sha256(decrypted)).toBe(sha256(plaintext));
  });
});

describe("one cached recipient key, many files at once", () => {
  it("encrypts 12 files concurrently with the same parsed key, and gpg decrypts each to its own plaintext", async () => {
    const cache = new RecipientKeyCache();
    const pair = keys.get("curve25519")!;
    const plaintexts = Array.from({ length: 12 }, (_, i) => Buffer.concat([Buffer.from(`file ${i}\n`), randomBytes(1000 + i * 5000)]));
    const ciphertexts = await Promise.all(
      plaintexts.map((plaintext, i) => collect(encryptStream(chunked(plaintext, 777), pair.publicKey, { keys: cache, armor: i % 2 === 0, compression: i % 3 !== 0 }))),
    );
    expect(cache.size).toBe(1);
    for (const [i, ciphertext] of ciphertexts.entries()) {
      expect(sha256(await gpgDecrypt(ciphertext))).toBe(sha256(plaintexts[i]!));
    }
  }, 60_000);
});

describe("small inputs in memory, larger ones streamed", () => {
  // A 10 kB limit instead of the 1 MiB default, and 1,000-byte reads, so the head read before the
  // choice spans many chunks. Either side of the limit, gpg must get the same plaintext back.
  const LIMIT = 10_000;
  /** gpg's packet listing gives a length for a message written whole, "unknown" for a streamed one. */
  async function encryptedPacketLength(ciphertext: Buffer): Promise<string> {
    const path = await tempFile(`${randomBytes(6).toString("hex")}.pgp`, ciphertext);
    const { stdout } = await home.gpgWithPassphrase(PASSPHRASE, ["--list-packets", path]);
    const match = /:encrypted data packet:\s+length: (\S+)/.exec(stdout.toString("utf8"));
    return match?.[1] ?? "missing";
  }

  it.each([
    { bytes: LIMIT - 1, path: "memory" },
    { bytes: LIMIT, path: "streamed" },
    { bytes: LIMIT + 1, path: "streamed" },
    { bytes: 0, path: "memory" },
  ])("$bytes bytes: $path, and gpg decrypts it (armored and binary, compressed or not)", async ({ bytes, path }) => {
    const pair = keys.get("curve25519")!;
    const plaintext = Buffer.concat([nonUtf8Binary(), Buffer.from("x,y\r\n".repeat(LIMIT))]).subarray(0, bytes);
    for (const [armor, compression] of [[false, true], [true, false]] as const) {
      const ciphertext = await collect(encryptStream(chunked(plaintext, 1000), pair.publicKey, { armor, compression, fileName: "r.csv", inMemoryMaxBytes: LIMIT }));
      expect(sha256(await gpgDecrypt(ciphertext))).toBe(sha256(plaintext));
      if (!armor) expect(await encryptedPacketLength(ciphertext)).toMatch(path === "memory" ? /^\d+$/ : /^unknown$/);
    }
  }, 60_000);

  it("a limit of 0 streams every input", async () => {
    const pair = keys.get("rsa-2048")!;
    // Random, so compression cannot shrink it below openpgp.js's first partial-length chunk
    // (a streamed message that ends within that chunk is written with a known length too).
    const plaintext = randomBytes(5_000);
    const ciphertext = await collect(encryptStream(chunked(plaintext, 1000), pair.publicKey, { inMemoryMaxBytes: 0 }));
    expect(sha256(await gpgDecrypt(ciphertext))).toBe(sha256(plaintext));
    expect(await encryptedPacketLength(ciphertext)).toBe("unknown");
  });

  it.each([
    { failAfter: 3_000, where: "before the limit" },
    { failAfter: 25_000, where: "after the limit" },
  ])("an input that fails $where fails the encrypted stream with the input's error", async ({ failAfter }) => {
    const pair = keys.get("curve25519")!;
    const input = Readable.from(
      (async function* () {
        for (let sent = 0; sent < failAfter; sent += 1000) yield randomBytes(1000);
        throw new Error("source read failed");
      })(),
      { objectMode: false },
    );
    await expect(collect(encryptStream(input, pair.publicKey, { inMemoryMaxBytes: LIMIT }))).rejects.toThrow("source read failed");
    expect(input.destroyed).toBe(true);
  });
});
