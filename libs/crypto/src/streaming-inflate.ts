import { pipeline } from "node:stream";
import { constants, createInflate, createInflateRaw } from "node:zlib";
import { CompressedDataPacket, LiteralDataPacket, OnePassSignaturePacket, PacketList, SignaturePacket, enums } from "openpgp";
import type { AnyPacket, Config } from "openpgp";
import { chunksOfWeb, nodeFromChunks, webFromNode } from "./stream-bridge.js";

/** The members of openpgp.js's compressed data packet we use (its type declarations mark them private). */
interface CompressedPacketMembers {
  algorithm: enums.compression;
  compressed: ReadableStream<Uint8Array> | Uint8Array | null;
  packets: PacketList<AnyPacket> | null;
  decompress(config?: Config): Promise<void>;
}

const CompressedPacketBase = CompressedDataPacket as unknown as new (config?: Config) => CompressedPacketMembers;

/** What a compressed data packet may contain (RFC 9580 §5.6: a message without encryption layers). */
const PACKETS_INSIDE_COMPRESSION = {
  [enums.packet.literalData]: LiteralDataPacket,
  [enums.packet.onePassSignature]: OnePassSignaturePacket,
  [enums.packet.signature]: SignaturePacket,
} as unknown as Parameters<typeof PacketList.fromBinary>[1];

function singleChunk(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}

/**
 * A compressed data packet that inflates ZIP/ZLIB with Node's zlib under real backpressure.
 * openpgp.js inflates through Node 20's DecompressionStream, whose readable side queues
 * thousands of chunks ahead of a slow reader (a 150 MB file held ~190 MB). Registered for
 * decryption through openpgp.js's `additionalAllowedPackets`, which replaces the packet class
 * for tag 8; BZIP2 and uncompressed data still go through openpgp.js.
 */
export class StreamingInflatePacket extends CompressedPacketBase {
  static readonly tag = enums.packet.compressedData;

  override async decompress(config?: Config): Promise<void> {
    const zip = this.algorithm === enums.compression.zip;
    if (!zip && this.algorithm !== enums.compression.zlib) return super.decompress(config);
    const compressed = this.compressed instanceof Uint8Array ? singleChunk(this.compressed) : this.compressed;
    if (!compressed) throw new Error("compressed data packet has no data");
    // Like GnuPG, accept a deflate stream whose end marker is missing; the MDC still vouches for the bytes.
    const inflater = zip ? createInflateRaw({ finishFlush: constants.Z_SYNC_FLUSH }) : createInflate({ finishFlush: constants.Z_SYNC_FLUSH });
    const inflated = pipeline(nodeFromChunks(chunksOfWeb(compressed)), inflater, () => undefined);
    this.packets = await PacketList.fromBinary(webFromNode(inflated), PACKETS_INSIDE_COMPRESSION, config);
  }
}
