import type { Transform } from "node:stream";
import type { ReportFormat } from "../types.js";
import { createTextEncoding, isTextFormat } from "./text-encodings.js";
import { TextWriter } from "./text-writer.js";
import type { WriterOptions } from "./types.js";
import { createXlsxWriter } from "./xlsx.js";

export { createCsvWriter, csvCell, csvField } from "./csv.js";
export { createJsonWriter, createNdjsonWriter } from "./json.js";
export { createXlsxWriter, XLSX_MAX_CELL_CHARS, XLSX_MAX_ROWS } from "./xlsx.js";
export { isFormulaLike, neutraliseFormula } from "./cells.js";
export type { WriterInput, WriterOptions } from "./types.js";

/** The streaming writer of one format: row or record batches in, file bytes out. */
export function createFormatWriter(format: ReportFormat, options: WriterOptions): Transform {
  return isTextFormat(format) ? new TextWriter(createTextEncoding(format, options)) : createXlsxWriter(options);
}

/** File extension and media type per format. */
export const FORMAT_FILES: Record<ReportFormat, { extension: string; contentType: string }> = {
  csv: { extension: "csv", contentType: "text/csv; charset=utf-8" },
  xlsx: { extension: "xlsx", contentType: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" },
  json: { extension: "json", contentType: "application/json" },
  ndjson: { extension: "ndjson", contentType: "application/x-ndjson" },
};
