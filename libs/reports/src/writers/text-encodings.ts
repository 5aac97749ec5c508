import type { ReportFormat } from "../types.js";
import { CsvEncoding } from "./csv.js";
import { JsonArrayEncoding, NdjsonEncoding } from "./json.js";
import type { TextEncoding } from "./text-writer.js";
import type { WriterOptions } from "./types.js";

/** The text formats. */
export type TextFormat = Exclude<ReportFormat, "xlsx">;

export function isTextFormat(format: ReportFormat): format is TextFormat {
  return format !== "xlsx";
}

/** How a text format spells a file: header, entries, end. */
export function createTextEncoding(format: TextFormat, options: WriterOptions): TextEncoding {
  switch (format) {
    case "csv":
      return new CsvEncoding(options);
    case "json":
      return new JsonArrayEncoding(options);
    case "ndjson":
      return new NdjsonEncoding(options);
  }
}
