import { Transform, type TransformCallback } from "node:stream";
import type { Row } from "../types.js";
import type { WriterInput } from "./types.js";

/**
 * A text format as three pieces: what comes before the first entry, each entry, and what
 * closes the file. The Transform around it turns each input batch into one UTF-8 chunk,
 * so the per-row cost is string building only.
 */
export interface TextEncoding {
  /**
   * Each entry's text depends on nothing written before it (CSV, NDJSON; not a JSON array,
   * whose separators do), so batches can be encoded apart, in other threads, and joined.
   */
  readonly standalone: boolean;
  head(): string;
  row(row: Row, first: boolean): string;
  record(text: string, first: boolean): string;
  tail(empty: boolean): string;
}

/**
 * Encodes strings into one growing buffer per batch: writing each row's UTF-8 straight into
 * place costs much less than joining a batch into one long string and encoding that.
 */
export class BatchBuffer {
  private buffer: Buffer;
  private length = 0;
  constructor(size: number) {
    this.buffer = Buffer.allocUnsafe(size);
  }
  add(text: string): void {
    // Three bytes per UTF-16 unit is the most UTF-8 can take (a surrogate pair: 4 bytes for 2 units).
    const most = text.length * 3;
    if (this.length + most > this.buffer.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + most));
      this.buffer.copy(bigger, 0, 0, this.length);
      this.buffer = bigger;
    }
    this.length += this.buffer.write(text, this.length, "utf8");
  }
  get bytes(): Buffer {
    return this.buffer.subarray(0, this.length);
  }
  get size(): number {
    return this.length;
  }
}

const MIN_BATCH_BYTES = 16 * 1024;
const MAX_BATCH_HINT = 4 * 1024 * 1024;

export class TextWriter extends Transform {
  private started = false;
  private count = 0;
  /** Expected bytes of the next batch: the last one's size, so buffers rarely grow. */
  private sizeHint = 64 * 1024;

  constructor(private readonly encoding: TextEncoding) {
    // A batch is one chunk of up to a few hundred KB: let one wait while the next is built.
    super({ writableObjectMode: true, readableObjectMode: false, writableHighWaterMark: 8, readableHighWaterMark: 1024 * 1024 });
  }

  private begin(out: BatchBuffer): void {
    if (this.started) return;
    this.started = true;
    out.add(this.encoding.head());
  }

  override _transform(input: WriterInput, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      const out = new BatchBuffer(this.sizeHint);
      this.begin(out);
      const enc = this.encoding;
      if (input.kind === "rows") {
        for (const row of input.rows) out.add(enc.row(row, this.count++ === 0));
      } else {
        for (const text of input.records) out.add(enc.record(text, this.count++ === 0));
      }
      this.sizeHint = Math.min(MAX_BATCH_HINT, Math.max(MIN_BATCH_BYTES, Math.ceil(out.size * 1.25)));
      if (out.size > 0) this.push(out.bytes);
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      const out = new BatchBuffer(MIN_BATCH_BYTES);
      this.begin(out);
      out.add(this.encoding.tail(this.count === 0));
      if (out.size > 0) this.push(out.bytes);
      done();
    } catch (err) {
      done(err as Error);
    }
  }
}
