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
 * byte order mark is dropped. A line longer than `maxLineBytes` (without its newline) is dropped
 * and reported as an `overlong` chunk in its place, however the stream was cut: one still
 * unfinished past the limit is dropped up to its end without being held, so memory stays bounded.
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
    // Only when the unfinished line and this piece together exceed the limit can a line that
    // ends in this piece be too long: look for such lines then, and not otherwise.
    if (this.size - this.wholeLines + chunk.length > this.maxLineBytes) chunk = this.dropLongLines(chunk, out);
    if (chunk.length === 0) return out;
    const last = chunk.lastIndexOf(10);
    this.parts.push(chunk);
    if (last >= 0) this.wholeLines = this.size + last + 1;
    this.size += chunk.length;
    if (this.size - this.wholeLines > this.maxLineBytes) {
      // The unfinished line is already too long: the whole lines before it go on, then its marker.
      if (this.wholeLines > 0) out.push({ kind: "lines", bytes: this.take(this.wholeLines) });
      this.dropHeldLine(out);
      this.discarding = true;
    } else if (this.wholeLines > 0 && this.wholeLines >= this.minChunkBytes) {
      out.push({ kind: "lines", bytes: this.take(this.wholeLines) });
    }
    return out;
  }

  /**
   * Drops each line that ends in `chunk` and is longer than the limit (it may have begun in the
   * bytes held), so a line is dropped whatever the pieces the stream came in. The lines before a
   * dropped one go on, then its marker. Returns the part of `chunk` after the last line dropped.
   */
  private dropLongLines(chunk: Buffer, out: LineChunk[]): Buffer {
    // Where the current line starts, relative to `chunk`: negative when it began in the bytes held.
    let lineStart = this.wholeLines - this.size;
    let nl = chunk.indexOf(10);
    while (nl >= 0) {
      if (nl - lineStart > this.maxLineBytes) {
        if (lineStart > 0) {
          // The held bytes and the start of this piece are whole lines.
          this.parts.push(chunk.subarray(0, lineStart));
          this.size += lineStart;
          this.wholeLines = this.size;
        }
        if (this.wholeLines > 0) out.push({ kind: "lines", bytes: this.take(this.wholeLines) });
        this.dropHeldLine(out);
        chunk = chunk.subarray(nl + 1);
        lineStart = 0;
        nl = chunk.indexOf(10);
      } else {
        lineStart = nl + 1;
        nl = chunk.indexOf(10, lineStart);
      }
    }
    return chunk;
  }

  /** Forgets the (only) unfinished line held and puts its marker out. */
  private dropHeldLine(out: LineChunk[]): void {
    out.push({ kind: "overlong", maxLineBytes: this.maxLineBytes });
    this.parts = [];
    this.size = 0;
    this.wholeLines = 0;
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
