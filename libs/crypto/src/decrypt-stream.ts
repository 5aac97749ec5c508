import type { Readable } from "node:stream";
import { decrypt, readMessage } from "openpgp";
import type { KeyID, Message, PrivateKey } from "openpgp";
import { DecryptionError } from "./errors.js";
import { GNUPG22_CONFIG } from "./gnupg-compat.js";
import { forgetPrivateKey, unlockPrivateKey } from "./private-key.js";
import { chunksOfWeb, nodeFromChunks, webFromChunks } from "./stream-bridge.js";
import { StreamingInflatePacket } from "./streaming-inflate.js";

/** Prepends an already-read chunk to the rest of an iterator. */
async function* withFirst<T>(first: T, rest: AsyncIterator<T>): AsyncGenerator<T> {
  yield first;
  for (;;) {
    const next = await rest.next();
    if (next.done) return;
    yield next.value;
  }
}

async function* asText(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder("utf-8");
  for await (const chunk of chunks) yield decoder.decode(chunk, { stream: true });
  const tail = decoder.decode();
  if (tail) yield tail;
}

/** Binary OpenPGP starts with a packet tag (high bit set); armor starts with "-----BEGIN". */
function looksArmored(firstChunk: Uint8Array): boolean {
  const text = Buffer.from(firstChunk.subarray(0, 64)).toString("latin1").trimStart();
  return text.startsWith("-----BEGIN PGP");
}

async function openMessage(input: Readable): Promise<Message<ReadableStream<Uint8Array | string>>> {
  const chunks = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await chunks.next();
  if (first.done || first.value.length === 0) throw new DecryptionError("decrypt.malformed_message", "the file is empty");
  const all = withFirst<Uint8Array>(first.value, chunks);
  const destroy = () => input.destroy();
  try {
    if (looksArmored(first.value)) {
      return (await readMessage({ armoredMessage: webFromChunks(asText(all), destroy) })) as Message<ReadableStream<string>>;
    }
    return (await readMessage({ binaryMessage: webFromChunks(all, destroy) })) as Message<ReadableStream<Uint8Array>>;
  } catch {
    throw new DecryptionError("decrypt.malformed_message", "the file is not an OpenPGP message");
  }
}

function keyIdsMatch(recipients: KeyID[], privateKey: PrivateKey): boolean {
  const ours = privateKey.getKeyIDs();
  return recipients.some((recipient) => ours.some((id) => id.equals(recipient, true)));
}

async function* plaintextChunks(data: ReadableStream<Uint8Array>, input: Readable): AsyncGenerator<Buffer> {
  try {
    yield* chunksOfWeb(data);
  } catch (error) {
    const text = error instanceof Error ? error.message : "";
    if (/modification detected|mdc|integrity|authentication/i.test(text)) {
      throw new DecryptionError("decrypt.integrity_check_failed", "the file failed its integrity check: it was damaged or altered after encryption");
    }
    throw new DecryptionError("decrypt.malformed_message", "the file is damaged: its OpenPGP data ends unexpectedly or is malformed");
  } finally {
    if (!input.readableEnded) input.destroy();
  }
}

/**
 * Decrypts an OpenPGP message (binary or armored) with a private key and passphrase that exist
 * only for this call: the private key's secret parameters are zeroed as soon as the session key
 * is recovered, nothing is kept. Rejects with DecryptionError (wrong passphrase, a private key
 * the file was not encrypted to, not an OpenPGP message) before any plaintext is produced.
 *
 * Memory stays flat: compressed data is inflated by StreamingInflatePacket, and the plaintext
 * streams as it is decrypted (`allowUnauthenticatedStream`): holding it back until
 * the trailing integrity check would mean buffering the whole file. A damaged file therefore
 * makes the returned stream error at its end (so an HTTP response is aborted, never completed).
 */
export async function decryptStream(input: Readable, privateKeyArmored: string, passphrase: string): Promise<Readable> {
  let privateKey: PrivateKey | undefined;
  try {
    privateKey = await unlockPrivateKey(privateKeyArmored, passphrase, (code, message) => new DecryptionError(code, message));
    const message = await openMessage(input);
    const recipients = message.getEncryptionKeyIDs();
    if (recipients.length === 0) {
      throw new DecryptionError("decrypt.wrong_key", "the file is not encrypted to a public key (it may be password-encrypted)");
    }
    if (!keyIdsMatch(recipients, privateKey)) {
      throw new DecryptionError(
        "decrypt.wrong_key",
        `the file is encrypted to key ID ${recipients.map((id) => id.toHex().toUpperCase()).join(", ")}, not to the private key given (fingerprint ${privateKey.getFingerprint().toUpperCase()})`,
      );
    }
    let result;
    try {
      result = await decrypt({
        message,
        decryptionKeys: privateKey,
        format: "binary",
        config: { ...GNUPG22_CONFIG, allowUnauthenticatedStream: true, additionalAllowedPackets: [StreamingInflatePacket] },
      });
    } catch (error) {
      const text = error instanceof Error ? error.message : "";
      if (/session key/i.test(text)) {
        throw new DecryptionError("decrypt.wrong_key", "the private key given cannot decrypt this file's session key");
      }
      // A subkey exported without its secret (gpg's stub for a key kept on a smartcard).
      if (/gnu-dummy/i.test(text)) {
        throw new DecryptionError("decrypt.key_is_stub", "the private key given has no secret part for the subkey this file is encrypted to (a stub: the key lives on a smartcard or was exported without it); decrypt the file where that key is, e.g. with gpg");
      }
      throw new DecryptionError("decrypt.malformed_message", "the file is not a valid OpenPGP message");
    }
    return nodeFromChunks(plaintextChunks(result.data as ReadableStream<Uint8Array>, input));
  } catch (error) {
    input.destroy();
    throw error;
  } finally {
    if (privateKey) forgetPrivateKey(privateKey);
  }
}
