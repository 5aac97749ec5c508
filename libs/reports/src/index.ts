export type {
  BusinessVersion,
  Cell,
  Column,
  ColumnType,
  MalformedPolicy,
  MapContext,
  RawVersion,
  ReportCategory,
  ReportDefinition,
  ReportFormat,
  ReportKind,
  ReportVersion,
  Row,
  SourceApi,
} from "./types.js";
export { REPORT_CATEGORIES, REPORT_FORMATS, REPORT_KINDS, SOURCE_APIS } from "./types.js";
export { InvalidReportParamsError, MalformedInputError, MalformedRecordError, ReportError, UnknownReportError } from "./errors.js";
export {
  describeReport,
  describeVersion,
  findReport,
  getReport,
  listReports,
  resolveVersion,
  type CatalogueEntry,
  type CatalogueVersion,
} from "./catalogue.js";
export { validateTaskReport, type ReportProblem, type TaskReportChoice } from "./validate-task-report.js";
export { transformStream, type TransformOptions, type TransformRequest, type TransformResult, type TransformRuntime } from "./transform-stream.js";
export { TransformPool, type TransformPoolOptions } from "./parallel/transform-pool.js";
export { RecordMapper, type MappingStats, type SkippedRecord } from "./record-mapper.js";
export { ZonedTime } from "./zoned-time.js";
export { parsePlatformTime } from "./record-access.js";
export {
  createCsvWriter,
  createFormatWriter,
  createJsonWriter,
  createNdjsonWriter,
  createXlsxWriter,
  FORMAT_FILES,
  isFormulaLike,
  neutraliseFormula,
  XLSX_MAX_CELL_CHARS,
  XLSX_MAX_ROWS,
  type WriterInput,
  type WriterOptions,
} from "./writers/index.js";
