import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { readPrivateKey, type SecretSubkeyPacket } from "openpgp";
import { beforeAll, describe, expect, it } from "vitest";
import { DecryptionError, decryptStream, encryptStream, generateKeyPair } from "../src/index.js";
import type { GeneratedKeyPair } from "../src/index.js";
import { chunked, collect } from "./support/streams.js";

const PASSPHRASE = `Decrypt test ${randomBytes(4).toString("hex")}`;
const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

let mine: GeneratedKeyPair;
let other: GeneratedKeyPair;

beforeAll(async () => {
  [mine, other] = await Promise.all([
    generateKeyPair({ passphrase: PASSPHRASE, algorithm: "rsa-2048" }),
    generateKeyPair({ passphrase: PASSPHRASE, algorithm: "curve25519" }),
  ]);
});


async function encrypted(plaintext: Buffer, options: { armor?: boolean; compression?: boolean } = {}, pair = mine): Promise<Buffer> {
  return collect(encryptStream(chunked(plaintext), pair.publicKey, options));
}

async function decryptionFailure(promise: Promise<unknown>): Promise<DecryptionError> {
  const error = await promise.catch((e: unknown) => e);
  expect(error).toBeInstanceOf(DecryptionError);
  const message = (error as Error).message;
  expect(message).not.toContain(PASSPHRASE);
  expect(message).not.toContain("PRIVATE KEY BLOCK-----\n");
  return error as DecryptionError;
}

describe("decryptStream", () => {
  it.each([
    { armor: false, compression: true },
    { armor: false, compression: false },
    { armor: true, compression: true },
    { armor: true, compression: false },
  ])("round-trips armor=$armor compression=$compression", async (options) => {
    const plaintext = Buffer.concat([randomBytes(300_000), Buffer.from("line,with,text\n".repeat(20_000))]);
    const ciphertext = await encrypted(plaintext, options);
    const decrypted = await collect(await decryptStream(chunked(ciphertext, 777), mine.privateKey, PASSPHRASE));
    expect(sha256(decrypted)).toBe(sha256(plaintext));
  });

  it("round-trips an empty file", async () => {
    const decrypted = await collect(await decryptStream(chunked(await encrypted(Buffer.alloc(0))), mine.privateKey, PASSPHRASE));
    expect(decrypted.length).toBe(0);
  });

  it("rejects a wrong passphrase before producing anything", async () => {
    const error = await decryptionFailure(decryptStream(chunked(await encrypted(Buffer.from("secret"))), mine.privateKey, "Wrong passphrase 99"));
    expect(error.code).toBe("private_key.wrong_passphrase");
  });

  it("rejects a private key the file was not encrypted to, naming the key ids", async () => {
    const error = await decryptionFailure(decryptStream(chunked(await encrypted(Buffer.from("secret"))), other.privateKey, PASSPHRASE));
    expect(error.code).toBe("decrypt.wrong_key");
    expect(error.message).toContain(other.fingerprint);
  });

  it("says a private key whose encryption subkey has no secret (a stub, the key on a smartcard) cannot decrypt, not that the file is bad", async () => {
    const stub = await readPrivateKey({ armoredKey: mine.privateKey });
    for (const subkey of stub.subkeys) (subkey.keyPacket as SecretSubkeyPacket).makeDummy();
    const error = await decryptionFailure(decryptStream(chunked(await encrypted(Buffer.from("secret"))), stub.armor(), PASSPHRASE));
    expect(error.code).toBe("decrypt.key_is_stub");
    expect(error.message).toMatch(/no secret part/);
  });

  it("rejects a public key given as the private key", async () => {
    const error = await decryptionFailure(decryptStream(chunked(await encrypted(Buffer.from("secret"))), mine.publicKey, PASSPHRASE));
    expect(error.code).toBe("private_key.public_key_given");
  });

  it("rejects input that is not an OpenPGP message", async () => {
    const error = await decryptionFailure(decryptStream(chunked(Buffer.from("just,a,csv\n1,2,3\n")), mine.privateKey, PASSPHRASE));
    expect(error.code).toBe("decrypt.malformed_message");
  });

  it("rejects an empty file", async () => {
    const error = await decryptionFailure(decryptStream(Readable.from([]), mine.privateKey, PASSPHRASE));
    expect(error.code).toBe("decrypt.malformed_message");
  });

  it("fails the stream when the ciphertext was altered", async () => {
    const ciphertext = await encrypted(randomBytes(200_000), { compression: false });
    const middle = Math.floor(ciphertext.length / 2);
    ciphertext[middle] = ciphertext[middle]! ^ 0x01;
    const plaintext = await decryptStream(chunked(ciphertext), mine.privateKey, PASSPHRASE);
    const error = await decryptionFailure(collect(plaintext));
    expect(error.code).toBe("decrypt.integrity_check_failed");
  });

  it("fails the stream when the file is truncated", async () => {
    const ciphertext = await encrypted(randomBytes(200_000));
    const plaintext = await decryptStream(chunked(ciphertext.subarray(0, ciphertext.length - 5000)), mine.privateKey, PASSPHRASE);
    await decryptionFailure(collect(plaintext));
  });
});
