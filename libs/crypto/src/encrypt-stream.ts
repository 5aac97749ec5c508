import { randomBytes } from "node:crypto";
import { pipeline } from "node:stream";
import type { Readable } from "node:stream";
import { createDeflate } from "node:zlib";
import { CompressedDataPacket, Message, PacketList, createMessage, encrypt, enums } from "openpgp";
import type { AnyPacket } from "openpgp";
import { COMPRESSION_LEVEL, GNUPG22_CONFIG, MESSAGE_CIPHER, MESSAGE_KEY_BYTES } from "./gnupg-compat.js";
import { RecipientKeyCache } from "./recipient-keys.js";
import { chunksOfWeb, nodeFromChunks, webFromNode } from "./stream-bridge.js";

export interface EncryptStreamOptions {
  /** ASCII armor (`.asc`) instead of binary OpenPGP (`.pgp`). Default false. */
  armor?: boolean;
  /** ZLIB-compress before encrypting. Default true. */
  compression?: boolean;
  /** File name recorded in the literal data packet (GnuPG uses it only with --use-embedded-filename). */
  fileName?: string;
  /** Where checked recipient keys are kept (default: one cache for the process). */
  keys?: RecipientKeyCache;
}

const processKeys = new RecipientKeyCache();

/** The fields of a compressed data packet we set ourselves (openpgp.js types them as private). */
interface CompressedPacketFields {
  algorithm: enums.compression;
  compressed: ReadableStream<Uint8Array>;
}

/**
 * Wraps the message's literal data in a ZLIB compressed data packet. We deflate with Node's zlib
 * instead of letting openpgp.js do it: its path goes through Node 20's CompressionStream, which
 * does not hold back its input and buffered hundreds of MB on large files.
 */
function compressWithZlib(message: Message<ReadableStream<Uint8Array>>): Message<ReadableStream<Uint8Array>> {
  const literalPacketBytes = message.packets.write() as unknown as ReadableStream<Uint8Array>;
  // pipeline() destroys the deflater with the source's error; reading `deflated` then rejects,
  // which fails the encrypted stream. The callback has nothing left to do.
  const deflate = pipeline(nodeFromChunks(chunksOfWeb(literalPacketBytes)), createDeflate({ level: COMPRESSION_LEVEL }), () => undefined);
  const deflated = webFromNode(deflate);
  const packet = new CompressedDataPacket();
  const fields = packet as unknown as CompressedPacketFields;
  fields.algorithm = enums.compression.zlib;
  fields.compressed = deflated;
  const packets = new PacketList<AnyPacket>();
  packets.push(packet);
  return new Message(packets);
}

async function* encryptedChunks(input: Readable, publicKeyArmored: string, options: EncryptStreamOptions): AsyncGenerator<Buffer> {
  try {
    // Typed rejection (expired since import, revoked…) before any byte is produced.
    const publicKey = await (options.keys ?? processKeys).get(publicKeyArmored);
    let message = await createMessage({
      binary: webFromNode(input),
      format: "binary",
      ...(options.fileName ? { filename: options.fileName } : {}),
    });
    if (options.compression ?? true) message = compressWithZlib(message);
    const settings = {
      message,
      encryptionKeys: publicKey,
      // Our own session key pins AES-256 with SEIPD v1 + MDC (no AEAD) whatever the recipient key
      // advertises: a key carrying the SEIPD v2 feature flag would otherwise get a v2 packet that
      // GnuPG 2.2 cannot open.
      sessionKey: { data: randomBytes(MESSAGE_KEY_BYTES), algorithm: MESSAGE_CIPHER },
      // Compression (if any) was applied above; stop openpgp.js from adding its own layer.
      config: { ...GNUPG22_CONFIG, preferredCompressionAlgorithm: enums.compression.uncompressed },
    };
    const encrypted: ReadableStream<Uint8Array | string> = options.armor
      ? await encrypt({ ...settings, format: "armored" })
      : await encrypt({ ...settings, format: "binary" });
    yield* chunksOfWeb(encrypted);
  } finally {
    if (!input.readableEnded) input.destroy();
  }
}

/**
 * Encrypts a stream to one public key as an OpenPGP message GnuPG 2.2 can decrypt (see
 * gnupg-compat.ts). Streaming end to end: memory stays flat whatever the input size. Errors
 * (including KeyRejectedError for a key that is no longer usable) surface as stream errors.
 */
export function encryptStream(input: Readable, publicKeyArmored: string, options: EncryptStreamOptions = {}): Readable {
  return nodeFromChunks(encryptedChunks(input, publicKeyArmored, options));
}
