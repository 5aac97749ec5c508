import type { Column, Row } from "../types.js";
import type { ZonedTime } from "../zoned-time.js";

/**
 * What a format writer consumes. Business reports send batches of rows aligned with their
 * columns; raw reports send batches of source records as their original JSON text, so the
 * records leave byte for byte as they came.
 */
export type WriterInput = { kind: "rows"; rows: Row[] } | { kind: "records"; records: string[] };

export interface WriterOptions {
  /** Columns of a business report; absent for raw reports. */
  columns?: readonly Column[];
  time: ZonedTime;
  /** CSV: start with a UTF-8 byte order mark so Excel reads the file as UTF-8. */
  bom?: boolean;
  /** CSV and XLSX: write formula-like text as it is instead of neutralising it. */
  keepFormulas?: boolean;
  /** XLSX: worksheet name. */
  sheetName?: string;
  /** XLSX: rows per sheet, header included (Excel's limit by default). */
  maxRowsPerSheet?: number;
}
