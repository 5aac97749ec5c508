import { numberId } from "../record-access.js";
import type { BusinessVersion, Column, ColumnType, RawVersion, ReportFormat, ReportVersion } from "../types.js";

export const TABLE_FORMATS: readonly ReportFormat[] = ["csv", "xlsx", "json", "ndjson"];
export const RECORD_FORMATS: readonly ReportFormat[] = ["json", "ndjson"];

export function column(key: string, type: ColumnType, description: string): Column {
  return Object.freeze({ key, type, description });
}

/** A business version; the params type is checked here and erased in the catalogue. */
export function rowsVersion<P>(version: Omit<BusinessVersion<P>, "shape">): ReportVersion {
  return Object.freeze({ ...version, shape: "rows", columns: Object.freeze([...version.columns]) }) as unknown as ReportVersion;
}

export function recordsVersion<P>(version: Omit<RawVersion<P>, "shape">): ReportVersion {
  return Object.freeze({ ...version, shape: "records" }) as unknown as ReportVersion;
}

/**
 * Lists of ids as one cell: "12;13;14" (semicolons survive CSV and read well in a sheet). A number
 * id must be one a double holds exactly, as for single ids; `path` names the list in errors.
 */
export function idList(values: unknown[], path: string): string | null {
  const ids: string[] = [];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v === "string") ids.push(v);
    else if (typeof v === "number") ids.push(numberId(v, `${path}[${i}]`));
  }
  return ids.length > 0 ? ids.join(";") : null;
}
