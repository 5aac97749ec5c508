import { Transform, type Readable, type TransformCallback, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { randomUUID } from "node:crypto";
import { getReport } from "./catalogue.js";
import { ChunkMapper } from "./chunk-mapper.js";
import { InvalidReportParamsError, UnknownReportError } from "./errors.js";
import { ParallelEncoder } from "./parallel/parallel-encoder.js";
import type { TransformPool } from "./parallel/transform-pool.js";
import { DEFAULT_MAX_LINE_BYTES, RecordMapper, type MappingStats, type SkippedRecord } from "./record-mapper.js";
import type { MalformedPolicy, ReportFormat } from "./types.js";
import { paramProblems } from "./validate-task-report.js";
import { createFormatWriter } from "./writers/index.js";
import { createTextEncoding, isTextFormat } from "./writers/text-encodings.js";
import { ZonedTime } from "./zoned-time.js";

export interface TransformOptions {
  /** CSV: start with a UTF-8 byte order mark (Excel). */
  csvBom?: boolean;
  /** CSV/XLSX: keep formula-like text as it is. */
  keepFormulas?: boolean;
  /** Overrides the report's malformed-record policy. */
  malformed?: MalformedPolicy;
  /** How many skipped records are listed as examples (default 5). */
  maxSkippedExamples?: number;
}

/** Where the transform runs. */
export interface TransformRuntime {
  /**
   * Worker threads for CSV and NDJSON: the file is read and encoded on every core, with the
   * same bytes as a single-thread transform. Without it (and for XLSX and JSON) the transform
   * runs in the calling thread.
   */
  pool?: TransformPool;
  /** A line longer than this many bytes is a malformed record, dropped unread (default 64 MiB). */
  maxLineBytes?: number;
}

export interface TransformRequest {
  report: string;
  version: number | "latest";
  format: ReportFormat;
  params?: unknown;
  /** The tenant's IANA zone: times are rendered with its offset. */
  timeZone: string;
  options?: TransformOptions;
}

export interface TransformResult {
  reportId: string;
  /** The version actually used ("latest" resolved). */
  reportVersion: number;
  format: ReportFormat;
  /** Non-blank input lines. */
  records: number;
  rows: number;
  skipped: number;
  skippedExamples: SkippedRecord[];
  /** Bytes written to the output. */
  bytes: number;
}

class ByteCounter extends Transform {
  bytes = 0;
  constructor() {
    super({ highWaterMark: 1024 * 1024 });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    done(null, chunk);
  }
}

/**
 * Streams a run's raw NDJSON records through a report definition into a file format.
 * Memory is constant in the number of records for every format; the promise settles when
 * the output has finished (or fails with the first error, e.g. a malformed record under
 * the `fail` policy).
 */
export async function transformStream(request: TransformRequest, input: Readable, output: Writable, runtime: TransformRuntime = {}): Promise<TransformResult> {
  const { definition, version } = getReport(request.report, request.version);
  if (!version.formats.includes(request.format)) {
    throw new UnknownReportError(
      "format",
      `report ${definition.id} v${version.version} has no ${JSON.stringify(request.format)} format (it has ${version.formats.join(", ")})`,
    );
  }
  const parsed = version.params.safeParse(request.params ?? {});
  if (!parsed.success) throw new InvalidReportParamsError(paramProblems(parsed.error));
  const time = new ZonedTime(request.timeZone);
  const options = request.options ?? {};
  const malformed = options.malformed ?? definition.malformed;
  const mapperOptions = {
    version,
    params: parsed.data,
    malformed,
    ...(options.maxSkippedExamples !== undefined ? { maxExamples: options.maxSkippedExamples } : {}),
  };
  const writerOptions = {
    ...(version.shape === "rows" ? { columns: version.columns } : {}),
    time,
    bom: options.csvBom === true,
    keepFormulas: options.keepFormulas === true,
  };
  const maxLineBytes = runtime.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const counter = new ByteCounter();
  let stats: MappingStats;

  // Worker threads for the text formats whose entries can be encoded apart (CSV, NDJSON).
  const textFormat = isTextFormat(request.format) ? request.format : null;
  const encoding = runtime.pool && textFormat ? createTextEncoding(textFormat, writerOptions) : null;
  if (runtime.pool && textFormat && encoding?.standalone) {
    const mapper = new ChunkMapper(mapperOptions);
    const encoder = new ParallelEncoder({
      pool: runtime.pool,
      encoding,
      mapper,
      maxLineBytes,
      spec: {
        transformId: randomUUID(),
        report: definition.id,
        version: version.version,
        format: textFormat,
        params: parsed.data,
        malformed,
        maxExamples: mapper.maxExamples,
        timeZone: request.timeZone,
        bom: writerOptions.bom,
        keepFormulas: writerOptions.keepFormulas,
      },
    });
    await pipeline(input, encoder, counter, output);
    stats = encoder.stats;
  } else {
    const mapper = new RecordMapper({ ...mapperOptions, maxLineBytes });
    const writer = createFormatWriter(request.format, { ...writerOptions, sheetName: definition.name.slice(0, 31).replace(/[\\/?*[\]:]/g, " ") });
    await pipeline(input, mapper, writer, counter, output);
    stats = mapper.stats;
  }
  return {
    reportId: definition.id,
    reportVersion: version.version,
    format: request.format,
    records: stats.records,
    rows: stats.rows,
    skipped: stats.skipped,
    skippedExamples: stats.skippedExamples,
    bytes: counter.bytes,
  };
}
