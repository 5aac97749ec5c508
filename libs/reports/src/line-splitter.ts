/**
 * One piece of an NDJSON byte stream: whole lines (the last piece of a stream may end without
 * a newline), or the place of one line that was longer than the limit and was dropped.
 */
export type LineChunk = { kind: "lines"; bytes: Buffer } | { kind: "overlong"; maxLineBytes: number };

const UTF8_BOM = [0xef, 0xbb, 0xbf];

/**
 * Cuts a byte stream into line-aligned chunks of at least `minChunkBytes` (except the last),
 * so that each chunk can be read on its own, in this thread or another. A newline byte never
 * occurs inside a UTF-8 sequence, so cutting after one never splits a character. A leading
 * byte order mark is dropped. Memory stays bounded: a line still unfinished after
 * `maxLineBytes` is dropped up to its end and reported as an `overlong` chunk in its place.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  /** Bytes of `parts` up to and including their last newline (0: no whole line yet). */
  private wholeLines = 0;
  /** Inside an over-long line: drop bytes up to its end. */
  private discarding = false;
  /** Bytes seen so far, up to the length of a byte order mark. */
  private head: number[] | null = [];

  constructor(
    private readonly maxLineBytes: number,
    private readonly minChunkBytes: number,
  ) {}

  /** The chunks that became complete with `bytes`, in order. */
  push(bytes: Buffer): LineChunk[] {
    const out: LineChunk[] = [];
    let chunk = this.skipBom(bytes);
    if (this.discarding) {
      const nl = chunk.indexOf(10);
      if (nl < 0) return out;
      this.discarding = false;
      chunk = chunk.subarray(nl + 1);
    }
    if (chunk.length === 0) return out;
    const last = chunk.lastIndexOf(10);
    this.parts.push(chunk);
    if (last >= 0) this.wholeLines = this.size + last + 1;
    this.size += chunk.length;
    if (this.size - this.wholeLines > this.maxLineBytes) {
      // The unfinished line is already too long: the whole lines before it go on, then its marker.
      if (this.wholeLines > 0) out.push({ kind: "lines", bytes: this.take(this.wholeLines) });
      out.push({ kind: "overlong", maxLineBytes: this.maxLineBytes });
      this.parts = [];
      this.size = 0;
      this.wholeLines = 0;
      this.discarding = true;
    } else if (this.wholeLines > 0 && this.wholeLines >= this.minChunkBytes) {
      out.push({ kind: "lines", bytes: this.take(this.wholeLines) });
    }
    return out;
  }

  /** What is left at the end of the stream: the last lines, the last one maybe without a newline. */
  end(): LineChunk[] {
    const pending = this.head && this.head.length > 0 ? Buffer.from(this.head) : null;
    this.head = null;
    const out = pending ? this.push(pending) : [];
    if (this.discarding || this.size === 0) return out;
    out.push({ kind: "lines", bytes: this.take(this.size) });
    return out;
  }

  /** Drops a UTF-8 byte order mark at the very start, even when it arrives split across chunks. */
  private skipBom(bytes: Buffer): Buffer {
    const head = this.head;
    if (head === null) return bytes;
    let i = 0;
    while (i < bytes.length && head.length < UTF8_BOM.length && bytes[i] === UTF8_BOM[head.length]) head.push(bytes[i++]!);
    if (head.length === UTF8_BOM.length) {
      this.head = null;
      return bytes.subarray(i);
    }
    if (i === bytes.length) return bytes.subarray(bytes.length); // maybe a BOM still: wait for more
    // Not a byte order mark: what was held back belongs to the data.
    this.head = null;
    return head.length === 0 ? bytes : Buffer.concat([Buffer.from(head), bytes.subarray(i)]);
  }

  /** The first `n` bytes held, as one buffer; the rest stays. */
  private take(n: number): Buffer {
    const joined = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size);
    const rest = joined.subarray(n);
    this.parts = rest.length > 0 ? [rest] : [];
    this.size = rest.length;
    this.wholeLines = 0;
    return joined.subarray(0, n);
  }
}
