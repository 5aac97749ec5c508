import { MalformedInputError, MalformedRecordError } from "./errors.js";
import type { LineChunk } from "./line-splitter.js";
import type { MalformedPolicy, ReportVersion, Row } from "./types.js";

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

/** What reading one chunk gave; line numbers count from the chunk's first line (1). */
export interface ChunkResult {
  lines: number;
  records: number;
  rows: number;
  skipped: number;
  /** The first few skipped records. */
  examples: SkippedRecord[];
  /** Policy `fail`: the first record that could not be read (reading stopped there). */
  failure: SkippedRecord | null;
}

/** Where a chunk's output goes: report rows (business reports) or record texts (raw reports). */
export interface ChunkOutput {
  rows: Row[];
  records: string[];
}

export interface ChunkMapperOptions {
  version: ReportVersion;
  params: unknown;
  malformed: MalformedPolicy;
  /** How many skipped records are kept as examples (default 5). */
  maxExamples?: number;
}

const MAX_REASON_CHARS = 200;

/**
 * Reads line-aligned NDJSON chunks through a report version: each line is decoded on its own
 * (an ASCII record stays a one-byte string for JSON.parse whatever else the chunk holds),
 * parsed, and mapped to rows, or checked and kept as text for raw reports. A chunk depends on
 * nothing before it, so chunks can be read in any thread and in any order; line numbers are
 * relative to the chunk and made absolute by the {@link MappingTally}.
 */
export class ChunkMapper {
  readonly maxExamples: number;

  constructor(private readonly options: ChunkMapperOptions) {
    this.maxExamples = options.maxExamples ?? 5;
  }

  map(chunk: LineChunk, out: ChunkOutput): ChunkResult {
    const result: ChunkResult = { lines: 0, records: 0, rows: 0, skipped: 0, examples: [], failure: null };
    if (chunk.kind === "overlong") {
      result.lines = 1;
      result.records = 1;
      this.malformed(result, `line longer than ${chunk.maxLineBytes} bytes`);
      return result;
    }
    const { bytes } = chunk;
    let start = 0;
    while (start < bytes.length && result.failure === null) {
      let end = bytes.indexOf(10, start);
      const next = end < 0 ? bytes.length : end + 1;
      if (end < 0) end = bytes.length;
      result.lines += 1;
      this.line(bytes, start, end, result, out);
      start = next;
    }
    return result;
  }

  private line(bytes: Buffer, start: number, end: number, result: ChunkResult, out: ChunkOutput): void {
    if (end > start && bytes[end - 1] === 13) end -= 1;
    const line = bytes.toString("utf8", start, end);
    // A record starts with "{" at once; anything else is checked for being blank.
    if (line.charCodeAt(0) !== 123 && line.trim().length === 0) return;
    result.records += 1;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch (err) {
      this.malformed(result, `invalid JSON: ${(err as Error).message}`);
      return;
    }
    const { version } = this.options;
    try {
      if (version.shape === "rows") {
        const mapped = version.map(record, { params: this.options.params });
        for (const row of mapped) out.rows.push(row);
        result.rows += mapped.length;
      } else {
        version.check(record);
        out.records.push(line);
        result.rows += 1;
      }
    } catch (err) {
      if (err instanceof MalformedRecordError) this.malformed(result, err.message);
      else throw err;
    }
  }

  private malformed(result: ChunkResult, reason: string): void {
    const text = reason.length > MAX_REASON_CHARS ? `${reason.slice(0, MAX_REASON_CHARS)}…` : reason;
    const skipped = { line: result.lines, reason: text };
    if (this.options.malformed === "fail") {
      result.failure = skipped;
      return;
    }
    result.skipped += 1;
    if (result.examples.length < this.maxExamples) result.examples.push(skipped);
  }
}

/**
 * Adds up chunk results in input order: absolute line numbers, the run's stats and its first
 * skipped examples; under policy `fail` the first unreadable record ends the transform.
 */
export class MappingTally {
  readonly stats: MappingStats = { records: 0, rows: 0, skipped: 0, skippedExamples: [] };
  private linesBefore = 0;

  constructor(private readonly maxExamples: number) {}

  /** Throws MalformedInputError (naming the line) when the chunk failed under policy `fail`. */
  add(result: ChunkResult): void {
    const { stats } = this;
    if (result.failure) throw new MalformedInputError(this.linesBefore + result.failure.line, result.failure.reason);
    stats.records += result.records;
    stats.rows += result.rows;
    stats.skipped += result.skipped;
    for (const example of result.examples) {
      if (stats.skippedExamples.length >= this.maxExamples) break;
      stats.skippedExamples.push({ line: this.linesBefore + example.line, reason: example.reason });
    }
    this.linesBefore += result.lines;
  }
}
