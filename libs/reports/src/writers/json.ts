import type { Transform } from "node:stream";
import type { Column, Row } from "../types.js";
import type { ZonedTime } from "../zoned-time.js";
import { TextWriter, type TextEncoding } from "./text-writer.js";
import type { WriterOptions } from "./types.js";

/**
 * A business row as a JSON object keyed by column keys; datetimes as ISO 8601 text with the
 * tenant's offset. The keys' JSON text is computed once per report.
 */
export class RowObjectEncoder {
  private readonly keys: string[];
  constructor(
    private readonly columns: readonly Column[],
    private readonly time: ZonedTime,
  ) {
    this.keys = columns.map((c, i) => `${i === 0 ? "{" : ","}${JSON.stringify(c.key)}:`);
  }

  encode(row: Row): string {
    const { columns, keys } = this;
    let out = "";
    for (let i = 0; i < columns.length; i++) {
      const v = row[i];
      out += keys[i]!;
      if (v === null || v === undefined) out += "null";
      else if (columns[i]!.type === "datetime" && typeof v === "number") out += `"${this.time.iso(v)}"`;
      else out += JSON.stringify(v);
    }
    return columns.length === 0 ? "{}" : out + "}";
  }
}

export class JsonArrayEncoding implements TextEncoding {
  readonly standalone = false;
  private readonly rows: RowObjectEncoder | null;
  constructor(options: WriterOptions) {
    this.rows = options.columns ? new RowObjectEncoder(options.columns, options.time) : null;
  }
  head(): string {
    return "[";
  }
  row(row: Row, first: boolean): string {
    if (!this.rows) throw new TypeError("rows need the report's columns");
    return (first ? "\n" : ",\n") + this.rows.encode(row);
  }
  record(text: string, first: boolean): string {
    return (first ? "\n" : ",\n") + text;
  }
  tail(empty: boolean): string {
    return empty ? "]\n" : "\n]\n";
  }
}

export class NdjsonEncoding implements TextEncoding {
  readonly standalone = true;
  private readonly rows: RowObjectEncoder | null;
  constructor(options: WriterOptions) {
    this.rows = options.columns ? new RowObjectEncoder(options.columns, options.time) : null;
  }
  head(): string {
    return "";
  }
  row(row: Row): string {
    if (!this.rows) throw new TypeError("rows need the report's columns");
    return this.rows.encode(row) + "\n";
  }
  record(text: string): string {
    return text + "\n";
  }
  tail(): string {
    return "";
  }
}

/** One JSON array, streamed: one element per line. */
export function createJsonWriter(options: WriterOptions): Transform {
  return new TextWriter(new JsonArrayEncoding(options));
}

/** Newline-delimited JSON: one object per line. */
export function createNdjsonWriter(options: WriterOptions): Transform {
  return new TextWriter(new NdjsonEncoding(options));
}
