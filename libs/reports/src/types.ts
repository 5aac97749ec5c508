import type { z } from "zod";

export const REPORT_CATEGORIES = ["messaging", "chat", "admin", "data-access"] as const;
export type ReportCategory = (typeof REPORT_CATEGORIES)[number];

export const REPORT_KINDS = ["business", "raw", "wfm-business", "wfm-raw"] as const;
export type ReportKind = (typeof REPORT_KINDS)[number];

/** The platform API a report reads (the fetcher picks its connector by this name): one list, owned by libs/sources. */
// The API list alone (no HTTP client, no telemetry): the transformer needs nothing else of sources.
export { SOURCE_APIS, type SourceApi } from "@transporter/sources/apis";
import type { SourceApi } from "@transporter/sources/apis";

export const REPORT_FORMATS = ["csv", "xlsx", "json", "ndjson"] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

/**
 * How a column's cells are typed. `datetime` cells hold epoch milliseconds and are rendered
 * in the tenant's zone (ISO 8601 with offset in text formats, a date cell in XLSX).
 */
export type ColumnType = "string" | "integer" | "number" | "boolean" | "datetime";

export interface Column {
  /** Stable machine name: the CSV header, the JSON key. */
  key: string;
  type: ColumnType;
  description: string;
}

/** One cell: text, a number, a boolean, epoch ms for datetime columns, or null when absent. */
export type Cell = string | number | boolean | null;
export type Row = Cell[];

/** What a business mapper sees besides the record. */
export interface MapContext<P> {
  params: P;
}

export type MalformedPolicy = "skip" | "fail";

interface VersionBase<P> {
  version: number;
  /** When this version was published (ISO date); informational for the catalogue. */
  released: string;
  /** What changed in this version, for the catalogue. */
  notes: string;
  params: z.ZodType<P>;
  formats: readonly ReportFormat[];
  /**
   * The parts of each source record this version reads besides `info`, for APIs that serve
   * records in parts (Messaging Interactions' `contentToRetrieve`): the fetcher asks for only
   * these, which keeps pages a third smaller. Absent: whole records.
   */
  sourceContent?: readonly string[];
}

/** Flat rows ready for spreadsheets and BI tools: explicit columns, one mapper. */
export interface BusinessVersion<P = unknown> extends VersionBase<P> {
  shape: "rows";
  columns: readonly Column[];
  /**
   * Turns one source record into zero or more rows aligned with `columns`. Throws
   * MalformedRecordError when the record lacks a required field or has the wrong type.
   */
  map(record: unknown, ctx: MapContext<P>): Row[];
}

/** The source records as they came; the definition only checks that each one is readable. */
export interface RawVersion<P = unknown> extends VersionBase<P> {
  shape: "records";
  /** Throws MalformedRecordError when the record is not one this report can carry. */
  check(record: unknown): void;
}

export type ReportVersion<P = unknown> = BusinessVersion<P> | RawVersion<P>;

export interface ReportDefinition {
  id: string;
  name: string;
  description: string;
  category: ReportCategory;
  kind: ReportKind;
  source: SourceApi;
  /** Windowed reports cover the run's data window; snapshots ignore it (admin reports). */
  window: "windowed" | "snapshot";
  /**
   * The smallest task delay (minutes after a window ends before its run) at which the source's
   * data for the window is complete; tasks with less are refused. Absent: any delay.
   */
  minDelayMinutes?: number;
  /**
   * How far back, in minutes from the moment of fetching, the source can serve data (Messaging
   * Operations: 1440). A task's window, delay, interval and scheduling lag must fit in it; tasks
   * reaching further are refused. Absent: no limit.
   */
  maxLookBackMinutes?: number;
  malformed: MalformedPolicy;
  /** Oldest first; a version is never edited once published. */
  versions: readonly ReportVersion[];
}
