import { Transform, type TransformCallback } from "node:stream";
import { MalformedInputError, MalformedRecordError } from "./errors.js";
import type { MalformedPolicy, ReportVersion, Row } from "./types.js";
import type { WriterInput } from "./writers/types.js";

export interface SkippedRecord {
  /** 1-based line of the NDJSON input. */
  line: number;
  reason: string;
}

export interface MappingStats {
  /** Non-blank input lines. */
  records: number;
  rows: number;
  skipped: number;
  skippedExamples: SkippedRecord[];
}

export interface RecordMapperOptions {
  version: ReportVersion;
  params: unknown;
  malformed: MalformedPolicy;
  /** How many skipped records are kept as examples. */
  maxExamples?: number;
  /** A line longer than this many bytes is a malformed record (memory stays bounded whatever the input). */
  maxLineBytes?: number;
}

const DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024;
const MAX_REASON_CHARS = 200;

/**
 * NDJSON bytes in, batches of report rows (or of raw record texts) out. Each input chunk
 * becomes at most one batch, so per-record stream overhead is nil. Lines are found in the
 * bytes (a newline byte never occurs inside a UTF-8 sequence) and decoded one by one, so an
 * ASCII record stays a one-byte string for JSON.parse whatever else the chunk holds. Records
 * the definition cannot read follow the policy: counted and skipped, or the stream fails
 * naming the line.
 */
export class RecordMapper extends Transform {
  readonly stats: MappingStats = { records: 0, rows: 0, skipped: 0, skippedExamples: [] };
  /** The start of a line whose end has not arrived yet. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private line = 0;
  /** Inside an over-long line: drop bytes up to its end. */
  private discarding = false;
  /** Whether the first bytes (and a possible byte order mark) have been seen. */
  private started = false;
  private readonly maxExamples: number;
  private readonly maxLineBytes: number;

  constructor(private readonly options: RecordMapperOptions) {
    super({ readableObjectMode: true, writableObjectMode: false, readableHighWaterMark: 8 });
    this.maxExamples = options.maxExamples ?? 5;
    this.maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  }

  private malformed(reason: string): void {
    const text = reason.length > MAX_REASON_CHARS ? `${reason.slice(0, MAX_REASON_CHARS)}…` : reason;
    if (this.options.malformed === "fail") throw new MalformedInputError(this.line, text);
    this.stats.skipped += 1;
    if (this.stats.skippedExamples.length < this.maxExamples) this.stats.skippedExamples.push({ line: this.line, reason: text });
  }

  private handleLine(bytes: Buffer, start: number, end: number, rows: Row[], records: string[]): void {
    this.line += 1;
    if (end > start && bytes[end - 1] === 13) end -= 1;
    const line = bytes.toString("utf8", start, end);
    // A record starts with "{" at once; anything else is checked for being blank.
    if (line.charCodeAt(0) !== 123 && line.trim().length === 0) return;
    this.stats.records += 1;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch (err) {
      this.malformed(`invalid JSON: ${(err as Error).message}`);
      return;
    }
    const { version } = this.options;
    try {
      if (version.shape === "rows") {
        const mapped = version.map(record, { params: this.options.params });
        for (const row of mapped) rows.push(row);
        this.stats.rows += mapped.length;
      } else {
        version.check(record);
        records.push(line);
        this.stats.rows += 1;
      }
    } catch (err) {
      if (err instanceof MalformedRecordError) this.malformed(err.message);
      else throw err;
    }
  }

  private pushBatch(rows: Row[], records: string[]): void {
    if (this.options.version.shape === "rows") {
      if (rows.length > 0) this.push({ kind: "rows", rows } satisfies WriterInput);
    } else if (records.length > 0) {
      this.push({ kind: "records", records } satisfies WriterInput);
    }
  }

  private consume(chunk: Buffer): void {
    const rows: Row[] = [];
    const records: string[] = [];
    let start = 0;
    if (!this.started && chunk.length > 0) {
      this.started = true;
      if (chunk.length >= 3 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) start = 3;
    }
    let nl = chunk.indexOf(10, start);
    if (this.discarding) {
      if (nl < 0) return;
      this.discarding = false;
      start = nl + 1;
      nl = chunk.indexOf(10, start);
    } else if (this.pendingBytes > 0) {
      if (nl < 0) {
        this.keep(chunk.subarray(start));
        return;
      }
      this.pending.push(chunk.subarray(start, nl));
      const joined = Buffer.concat(this.pending, this.pendingBytes + nl - start);
      this.pending = [];
      this.pendingBytes = 0;
      this.handleLine(joined, 0, joined.length, rows, records);
      start = nl + 1;
      nl = chunk.indexOf(10, start);
    }
    while (nl >= 0) {
      this.handleLine(chunk, start, nl, rows, records);
      start = nl + 1;
      nl = chunk.indexOf(10, start);
    }
    if (start < chunk.length) this.keep(chunk.subarray(start));
    this.pushBatch(rows, records);
  }

  /** Holds the start of an unfinished line; one longer than the limit is dropped and counted. */
  private keep(part: Buffer): void {
    this.pending.push(part);
    this.pendingBytes += part.length;
    if (this.pendingBytes <= this.maxLineBytes) return;
    this.pending = [];
    this.pendingBytes = 0;
    this.line += 1;
    this.stats.records += 1;
    this.discarding = true;
    this.malformed(`line longer than ${this.maxLineBytes} bytes`);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.consume(chunk);
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      if (this.pendingBytes > 0 && !this.discarding) {
        const rows: Row[] = [];
        const records: string[] = [];
        const joined = Buffer.concat(this.pending, this.pendingBytes);
        this.pending = [];
        this.pendingBytes = 0;
        this.handleLine(joined, 0, joined.length, rows, records);
        this.pushBatch(rows, records);
      }
      done();
    } catch (err) {
      done(err as Error);
    }
  }
}
