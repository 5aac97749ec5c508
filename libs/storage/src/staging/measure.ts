import { createHash } from "node:crypto";
import { Transform } from "node:stream";
import type { TransformCallback } from "node:stream";

/**
 * A pass-through that counts bytes and hashes them (sha256) on the way, so a store or adapter
 * learns size and checksum of what it wrote without reading the data twice.
 */
export class MeasuringStream extends Transform {
  bytes = 0;
  private readonly hash = createHash("sha256");
  private digest: string | undefined;
  /** Also MD5 (what S3 ETags and GCS md5Hash compare against), only when asked for. */
  private readonly md5Hash;
  private md5Digest: string | undefined;

  constructor(options: { md5?: boolean } = {}) {
    super();
    this.md5Hash = options.md5 ? createHash("md5") : undefined;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    this.md5Hash?.update(chunk);
    callback(null, chunk);
  }

  /** MD5 of the bytes as a Buffer (constructed with { md5: true }); call once the stream has ended. */
  md5(): Buffer {
    if (!this.md5Hash) throw new Error("MeasuringStream was created without { md5: true }");
    this.md5Digest ??= this.md5Hash.digest("base64");
    return Buffer.from(this.md5Digest, "base64");
  }

  /** Lowercase hex sha256 of every byte that went through; call once the stream has ended. */
  sha256(): string {
    this.digest ??= this.hash.digest("hex");
    return this.digest;
  }
}
