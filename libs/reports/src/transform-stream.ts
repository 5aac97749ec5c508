import { Transform, type Readable, type TransformCallback, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { getReport } from "./catalogue.js";
import { InvalidReportParamsError, UnknownReportError } from "./errors.js";
import { RecordMapper, type SkippedRecord } from "./record-mapper.js";
import type { MalformedPolicy, ReportFormat } from "./types.js";
import { paramProblems } from "./validate-task-report.js";
import { createFormatWriter } from "./writers/index.js";
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
export async function transformStream(request: TransformRequest, input: Readable, output: Writable): Promise<TransformResult> {
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

  const mapper = new RecordMapper({
    version,
    params: parsed.data,
    malformed: options.malformed ?? definition.malformed,
    ...(options.maxSkippedExamples !== undefined ? { maxExamples: options.maxSkippedExamples } : {}),
  });
  const writer = createFormatWriter(request.format, {
    ...(version.shape === "rows" ? { columns: version.columns } : {}),
    time,
    bom: options.csvBom === true,
    keepFormulas: options.keepFormulas === true,
    sheetName: definition.name.slice(0, 31).replace(/[\\/?*[\]:]/g, " "),
  });
  const counter = new ByteCounter();
  await pipeline(input, mapper, writer, counter, output);
  return {
    reportId: definition.id,
    reportVersion: version.version,
    format: request.format,
    records: mapper.stats.records,
    rows: mapper.stats.rows,
    skipped: mapper.stats.skipped,
    skippedExamples: mapper.stats.skippedExamples,
    bytes: counter.bytes,
  };
}
