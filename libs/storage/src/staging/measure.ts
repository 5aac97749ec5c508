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

  /** What `expectedBytes` found wrong (the stream failed with it), if anything. */
  sizeProblem: string | undefined;
  private readonly expectedBytes: number | undefined;

  /**
   * With `expectedBytes`, the stream fails as soon as more have come, or at its end when fewer
   * did: an upload reading it then fails before it completes, and the object it would replace
   * at the destination stays as it was.
   */
  constructor(options: { md5?: boolean; expectedBytes?: number } = {}) {
    super();
    this.md5Hash = options.md5 ? createHash("md5") : undefined;
    this.expectedBytes = options.expectedBytes;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.expectedBytes !== undefined && this.bytes > this.expectedBytes) return callback(this.sizeError(`more than the ${this.expectedBytes} bytes expected`));
    this.hash.update(chunk);
    this.md5Hash?.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.expectedBytes !== undefined && this.bytes !== this.expectedBytes) return callback(this.sizeError(`${this.bytes} bytes, ${this.expectedBytes} expected`));
    callback();
  }

  private sizeError(problem: string): Error {
    this.sizeProblem = `read ${problem} from staging`;
    return new Error(this.sizeProblem);
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
