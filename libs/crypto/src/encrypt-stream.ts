import { randomBytes } from "node:crypto";
import { pipeline } from "node:stream";
import type { Readable } from "node:stream";
import { promisify } from "node:util";
import { createDeflate, deflate } from "node:zlib";
import { CompressedDataPacket, Message, PacketList, createMessage, encrypt, enums } from "openpgp";
import type { AnyPacket, Key } from "openpgp";
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
  /** Inputs shorter than this are encrypted in memory (default IN_MEMORY_MAX_BYTES); 0 streams everything. */
  inMemoryMaxBytes?: number;
}

const processKeys = new RecipientKeyCache();

/**
 * Inputs shorter than this are encrypted from memory. openpgp.js's web-stream path costs a fixed
 * ~5 ms of CPU per message (it builds dozens of WHATWG streams, each expensive to construct in
 * Node 20) against ~1 ms in memory: the difference dominates small reports. Larger inputs
 * stream, so memory stays bounded by a few copies of this figure whatever the file size.
 */
export const IN_MEMORY_MAX_BYTES = 1024 * 1024;

const deflateAsync = promisify(deflate);

/** The fields of a compressed data packet we set ourselves (openpgp.js types them as private). */
interface CompressedPacketFields {
  algorithm: enums.compression;
  compressed: ReadableStream<Uint8Array> | Uint8Array;
}

/** A message of one ZLIB compressed data packet holding the given compressed bytes. */
function compressedMessage<T extends ReadableStream<Uint8Array> | Uint8Array>(compressed: T): Message<T> {
  const packet = new CompressedDataPacket();
  const fields = packet as unknown as CompressedPacketFields;
  fields.algorithm = enums.compression.zlib;
  fields.compressed = compressed;
  const packets = new PacketList<AnyPacket>();
  packets.push(packet);
  return new Message(packets);
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
  return compressedMessage(webFromNode(deflate));
}

/** The same compression for a message held in memory (deflated on libuv's thread pool, off the event loop). */
async function compressInMemory(message: Message<Uint8Array>): Promise<Message<Uint8Array>> {
  const literalPacketBytes = message.packets.write() as Uint8Array;
  return compressedMessage<Uint8Array>(await deflateAsync(literalPacketBytes, { level: COMPRESSION_LEVEL }));
}

/** The first chunks of a stream, until `limit` bytes are reached, and whether the stream ended before that. */
async function readHead(chunks: AsyncIterator<Buffer>, limit: number): Promise<{ head: Buffer[]; bytes: number; ended: boolean }> {
  const head: Buffer[] = [];
  let bytes = 0;
  while (bytes < limit) {
    const next = await chunks.next();
    if (next.done) return { head, bytes, ended: true };
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value as Uint8Array | string);
    head.push(chunk);
    bytes += chunk.length;
  }
  return { head, bytes, ended: false };
}

/** The chunks already read, then the rest of the stream. */
async function* rejoined(head: Buffer[], rest: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  yield* head;
  for (;;) {
    const next = await rest.next();
    if (next.done) return;
    yield next.value;
  }
}

/** Settings shared by both paths: our own session key, no compression added by openpgp.js. */
function encryptSettings(publicKey: Key) {
  return {
    encryptionKeys: publicKey,
    // Our own session key pins AES-256 with SEIPD v1 + MDC (no AEAD) whatever the recipient key
    // advertises: a key carrying the SEIPD v2 feature flag would otherwise get a v2 packet that
    // GnuPG 2.2 cannot open.
    sessionKey: { data: randomBytes(MESSAGE_KEY_BYTES), algorithm: MESSAGE_CIPHER },
    // Compression (if any) was applied by us; stop openpgp.js from adding its own layer.
    config: { ...GNUPG22_CONFIG, preferredCompressionAlgorithm: enums.compression.uncompressed },
  };
}

/** The literal-data message both paths start from, in memory or as a web stream. */
function literalMessage<T extends Uint8Array | ReadableStream<Uint8Array>>(binary: T, options: EncryptStreamOptions): Promise<Message<T>> {
  return createMessage({ binary, format: "binary", ...(options.fileName ? { filename: options.fileName } : {}) });
}

async function encryptInMemory(data: Uint8Array, publicKey: Key, options: EncryptStreamOptions): Promise<Buffer> {
  let message = await literalMessage(data, options);
  if (options.compression ?? true) message = await compressInMemory(message);
  if (options.armor) return Buffer.from(await encrypt({ ...encryptSettings(publicKey), message, format: "armored" }), "utf8");
  const encrypted = await encrypt({ ...encryptSettings(publicKey), message, format: "binary" });
  return Buffer.from(encrypted.buffer, encrypted.byteOffset, encrypted.byteLength);
}

async function* encryptStreaming(input: Readable, publicKey: Key, options: EncryptStreamOptions): AsyncGenerator<Buffer> {
  let message = await literalMessage(webFromNode(input), options);
  if (options.compression ?? true) message = compressWithZlib(message);
  const encrypted: ReadableStream<Uint8Array | string> = options.armor
    ? await encrypt({ ...encryptSettings(publicKey), message, format: "armored" })
    : await encrypt({ ...encryptSettings(publicKey), message, format: "binary" });
  yield* chunksOfWeb(encrypted);
}

async function* encryptedChunks(input: Readable, publicKeyArmored: string, options: EncryptStreamOptions): AsyncGenerator<Buffer> {
  const chunks = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  try {
    // Typed rejection (expired since import, revoked…) before any byte is produced.
    const publicKey = await (options.keys ?? processKeys).get(publicKeyArmored);
    const { head, bytes, ended } = await readHead(chunks, options.inMemoryMaxBytes ?? IN_MEMORY_MAX_BYTES);
    if (ended) {
      yield await encryptInMemory(Buffer.concat(head, bytes), publicKey, options);
      return;
    }
    yield* encryptStreaming(nodeFromChunks(rejoined(head, chunks)), publicKey, options);
  } finally {
    if (!input.readableEnded) input.destroy();
  }
}

/**
 * Encrypts a stream to one public key as an OpenPGP message GnuPG 2.2 can decrypt (see
 * gnupg-compat.ts). Small inputs are encrypted in memory, larger ones stream end to end: memory
 * stays bounded whatever the input size. Both produce the same kind of message. Errors
 * (including KeyRejectedError for a key that is no longer usable) surface as stream errors.
 */
export function encryptStream(input: Readable, publicKeyArmored: string, options: EncryptStreamOptions = {}): Readable {
  const output = nodeFromChunks(encryptedChunks(input, publicKeyArmored, options));
  // Destroyed before its first read (the store it was handed to failed to open its file), the
  // generator never starts and its `finally` never runs: the input (an open file) goes with it here.
  output.once("close", () => {
    if (!input.readableEnded) input.destroy();
  });
  return output;
}
