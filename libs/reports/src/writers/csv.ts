import type { Transform } from "node:stream";
import type { Column, Row } from "../types.js";
import type { ZonedTime } from "../zoned-time.js";
import { neutraliseFormula } from "./cells.js";
import { TextWriter, type TextEncoding } from "./text-writer.js";
import type { WriterOptions } from "./types.js";

const NEEDS_QUOTES = /[",\r\n]/;
const QUOTE = /"/g;

/** RFC 4180 field: quoted only when it holds a quote, comma or line break; quotes doubled. */
export function csvField(text: string): string {
  return NEEDS_QUOTES.test(text) ? `"${text.replace(QUOTE, '""')}"` : text;
}

/** One typed cell as CSV text; exported for the writer's tests. */
export function csvCell(value: Row[number], column: Column, time: ZonedTime, keepFormulas: boolean): string {
  if (value === null) return "";
  switch (column.type) {
    case "datetime":
      return typeof value === "number" ? time.iso(value) : csvField(String(value));
    case "integer":
    case "number":
    case "boolean":
      return String(value);
    default: {
      const text = typeof value === "string" ? value : String(value);
      return csvField(keepFormulas ? text : neutraliseFormula(text));
    }
  }
}

const enum Kind {
  Text,
  Plain,
  Time,
}

export class CsvEncoding implements TextEncoding {
  readonly standalone = true;
  private readonly columns: readonly Column[];
  private readonly kinds: Kind[];
  constructor(private readonly options: WriterOptions) {
    if (!options.columns) throw new TypeError("CSV needs the report's columns");
    this.columns = options.columns;
    this.kinds = this.columns.map((c) => (c.type === "datetime" ? Kind.Time : c.type === "string" ? Kind.Text : Kind.Plain));
  }

  head(): string {
    const header = this.columns.map((c) => csvField(c.key)).join(",") + "\r\n";
    return this.options.bom ? `\uFEFF${header}` : header;
  }

  // The hot loop of the CSV path: one pass per row, the cell's kind decided once per column.
  row(row: Row): string {
    const { kinds } = this;
    const { time } = this.options;
    const keep = this.options.keepFormulas === true;
    let line = "";
    for (let i = 0; i < kinds.length; i++) {
      if (i > 0) line += ",";
      const v = row[i];
      if (v === null || v === undefined) continue;
      const kind = kinds[i];
      if (kind === Kind.Plain) line += typeof v === "string" ? csvField(v) : String(v);
      else if (kind === Kind.Time && typeof v === "number") line += time.iso(v);
      else {
        const text = typeof v === "string" ? v : String(v);
        line += csvField(keep ? text : neutraliseFormula(text));
      }
    }
    return line + "\r\n";
  }

  record(): string {
    throw new TypeError("raw records have no CSV form");
  }

  tail(): string {
    return "";
  }
}

/** CSV (RFC 4180): UTF-8, CRLF line ends, a header row of column keys, optional BOM. */
export function createCsvWriter(options: WriterOptions): Transform {
  return new TextWriter(new CsvEncoding(options));
}
