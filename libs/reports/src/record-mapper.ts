import { Transform, type TransformCallback } from "node:stream";
import { ChunkMapper, MappingTally, type MappingStats } from "./chunk-mapper.js";
import { LineSplitter, type LineChunk } from "./line-splitter.js";
import type { MalformedPolicy, ReportVersion, Row } from "./types.js";
import type { WriterInput } from "./writers/types.js";

export type { MappingStats, SkippedRecord } from "./chunk-mapper.js";

export interface RecordMapperOptions {
  version: ReportVersion;
  params: unknown;
  malformed: MalformedPolicy;
  /** How many skipped records are kept as examples. */
  maxExamples?: number;
  /** A line longer than this many bytes is a malformed record (memory stays bounded whatever the input). */
  maxLineBytes?: number;
}

export const DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024;
/** Lines are read in chunks of at least this many bytes: few, large batches for the writers. */
const MIN_CHUNK_BYTES = 64 * 1024;

/**
 * NDJSON bytes in, batches of report rows (or of raw record texts) out, in this thread: each
 * line-aligned chunk becomes one batch, so per-record stream overhead is nil. Records the
 * definition cannot read follow the policy: counted and skipped, or the stream fails naming
 * the line.
 */
export class RecordMapper extends Transform {
  private readonly splitter: LineSplitter;
  private readonly mapper: ChunkMapper;
  private readonly tally: MappingTally;

  constructor(options: RecordMapperOptions) {
    super({ readableObjectMode: true, writableObjectMode: false, readableHighWaterMark: 8 });
    this.splitter = new LineSplitter(options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, MIN_CHUNK_BYTES);
    this.mapper = new ChunkMapper(options);
    this.tally = new MappingTally(this.mapper.maxExamples);
  }

  get stats(): MappingStats {
    return this.tally.stats;
  }

  private mapChunks(chunks: LineChunk[]): void {
    for (const chunk of chunks) {
      const out = { rows: [] as Row[], records: [] as string[] };
      this.tally.add(this.mapper.map(chunk, out));
      if (out.rows.length > 0) this.push({ kind: "rows", rows: out.rows } satisfies WriterInput);
      else if (out.records.length > 0) this.push({ kind: "records", records: out.records } satisfies WriterInput);
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    try {
      this.mapChunks(this.splitter.push(chunk));
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      this.mapChunks(this.splitter.end());
      done();
    } catch (err) {
      done(err as Error);
    }
  }
}
