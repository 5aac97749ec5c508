import { Transform, Writable, type TransformCallback } from "node:stream";
import type ExcelJS from "exceljs";
import type { Column, Row } from "../types.js";
import { neutraliseFormula } from "./cells.js";
import type { WriterInput, WriterOptions } from "./types.js";

/** Excel's limits: rows per sheet (header included) and characters per cell. */
export const XLSX_MAX_ROWS = 1_048_576;
export const XLSX_MAX_CELL_CHARS = 32_767;

const DATE_FORMAT = "yyyy-mm-dd hh:mm:ss";
/** XML waiting for the zip beyond which no more rows are taken. */
const MAX_ZIP_BACKLOG = 1024 * 1024;

/**
 * Bytes of XML waiting in the stream archiver reads a worksheet from. exceljs hands XML to it
 * without waiting (its StreamBuf ignores write()'s answer), so the backlog is watched here
 * instead. archiver uses readable-stream's classes, so this reads their writable state.
 */
function zipBacklog(sheet: ExcelJS.Worksheet): number {
  const stream = (sheet as unknown as { _stream?: { pipes?: unknown[] } })._stream;
  const target = stream?.pipes?.[0] as { _writableState?: { length?: number }; writableLength?: number } | undefined;
  return target?.writableLength ?? target?._writableState?.length ?? 0;
}

function widthOf(column: Column): number {
  switch (column.type) {
    case "datetime":
      return 20;
    case "boolean":
      return 8;
    case "integer":
    case "number":
      return 12;
    default:
      return Math.max(14, Math.min(40, column.key.length + 2));
  }
}

/**
 * What OOXML text (ST_Xstring) must spell as `_xHHHH_`: C0 controls but TAB and LF (which XML
 * text holds as they are), CR (XML reads it back as LF) and DEL, all of which exceljs drops; and
 * an underscore that would start such an escape (`_x0041_` reads as "A" in Excel), the following
 * control counted as the underscore its escape starts with.
 */
// eslint-disable-next-line no-control-regex
const OOXML_ESCAPED = /_(?=x[0-9A-Fa-f]{4}[_\x00-\x08\x0B-\x1F\x7F])|[\x00-\x08\x0B-\x1F\x7F]/g;
const NEEDS_ESCAPE = new RegExp(OOXML_ESCAPED.source);
/** Characters an escape adds: each escaped one is written as the 7 of `_xHHHH_`. */
const ESCAPE_GROWTH = 6;

function ooxmlEscape(text: string): string {
  if (!NEEDS_ESCAPE.test(text)) return text;
  return text.replace(OOXML_ESCAPED, (c) => `_x${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}_`);
}

/**
 * The cell's text as written: escaped, and within Excel's limit counted as written. A longer one
 * is cut in the text, not in its escapes (half an escape would show as its letters), and on a
 * code point boundary so no half surrogate pair remains.
 */
function fitCell(text: string): string {
  const escaped = ooxmlEscape(text);
  if (escaped.length <= XLSX_MAX_CELL_CHARS) return escaped;
  let growth = 0;
  let end = -1;
  for (const m of text.matchAll(OOXML_ESCAPED)) {
    if (m.index + growth + ESCAPE_GROWTH + 1 > XLSX_MAX_CELL_CHARS) {
      end = Math.min(m.index, XLSX_MAX_CELL_CHARS - growth);
      break;
    }
    growth += ESCAPE_GROWTH;
  }
  if (end < 0) end = XLSX_MAX_CELL_CHARS - growth;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  // Cutting only removes escapes (an underscore whose escape's end was cut off): never longer.
  return ooxmlEscape(text.slice(0, end));
}

/**
 * XLSX through exceljs's streaming WorkbookWriter: rows are committed as they arrive and
 * never kept. Cells are typed: numbers as numbers, booleans as booleans, datetimes as date
 * cells showing the tenant's local wall-clock time. Shared strings are off (they would
 * grow with the file). A report longer than a sheet continues on the next sheet.
 *
 * exceljs does not honour backpressure internally, so this Transform holds its input
 * while the zip output it produced has not been read: memory stays flat with a slow reader.
 */
class XlsxWriter extends Transform {
  private readonly columns: readonly Column[];
  /** exceljs is loaded on first use: processes writing only CSV or JSON never pay for it. */
  private workbook: ExcelJS.stream.xlsx.WorkbookWriter | null = null;
  private readonly sink: Writable;
  private sheet: ExcelJS.Worksheet | null = null;
  private sheetCount = 0;
  private sheetRows = 0;
  /**
   * One style object per column, shared by all its cells: exceljs caches style ids by object
   * identity, and a fresh object per cell costs it a style lookup per cell.
   */
  private readonly cellStyles: Partial<ExcelJS.Style>[];
  private blocked: (() => void) | null = null;
  private waiting: (() => void) | null = null;

  constructor(private readonly options: WriterOptions) {
    super({ writableObjectMode: true, readableObjectMode: false, writableHighWaterMark: 4 });
    if (!options.columns) throw new TypeError("XLSX needs the report's columns");
    this.columns = options.columns;
    const dateStyle: Partial<ExcelJS.Style> = { numFmt: DATE_FORMAT };
    const plainStyle: Partial<ExcelJS.Style> = {};
    this.cellStyles = this.columns.map((c) => (c.type === "datetime" ? dateStyle : plainStyle));
    this.sink = new Writable({
      write: (chunk: Buffer, _enc, done) => {
        if (this.push(chunk)) done();
        else this.blocked = done;
      },
    });
  }

  private async open(): Promise<ExcelJS.stream.xlsx.WorkbookWriter> {
    if (!this.workbook) {
      const { default: excel } = await import("exceljs");
      this.workbook ??= new excel.stream.xlsx.WorkbookWriter({ stream: this.sink, useStyles: true, useSharedStrings: false });
    }
    return this.workbook;
  }

  override _read(size: number): void {
    const release = this.blocked;
    this.blocked = null;
    if (release) release();
    const resume = this.waiting;
    this.waiting = null;
    if (resume) resume();
    super._read(size);
  }

  private openSheet(): ExcelJS.Worksheet {
    if (!this.workbook) throw new Error("the workbook is not open yet");
    if (this.sheet) this.sheet.commit();
    this.sheetCount += 1;
    const base = this.options.sheetName ?? "Report";
    // Excel allows 31 characters in a sheet name: an overflow sheet's " 2" must fit too.
    const suffix = this.sheetCount === 1 ? "" : ` ${this.sheetCount}`;
    const sheet = this.workbook.addWorksheet(`${Array.from(base).slice(0, 31 - suffix.length).join("")}${suffix}`, {
      views: [{ state: "frozen", ySplit: 1 }],
    });
    sheet.columns = this.columns.map((c) => ({ key: c.key, width: widthOf(c) }));
    const header = sheet.addRow(this.columns.map((c) => c.key));
    header.font = { bold: true };
    header.commit();
    this.sheet = sheet;
    this.sheetRows = 1;
    return sheet;
  }

  private cells(row: Row): unknown[] {
    const { columns } = this;
    const { time } = this.options;
    const keep = this.options.keepFormulas === true;
    const out = new Array<unknown>(columns.length);
    for (let i = 0; i < columns.length; i++) {
      const v = row[i];
      if (v === null || v === undefined) {
        out[i] = null;
        continue;
      }
      const type = columns[i]!.type;
      if (type === "datetime" && typeof v === "number") out[i] = time.wallClock(v);
      else if (typeof v === "string") out[i] = fitCell(xmlSafe(keep ? v : neutraliseFormula(v)));
      else out[i] = v;
    }
    return out;
  }

  override _transform(input: WriterInput, enc: BufferEncoding, done: TransformCallback): void {
    if (!this.workbook) {
      this.open().then(
        () => this._transform(input, enc, done),
        (err: unknown) => done(err as Error),
      );
      return;
    }
    try {
      if (input.kind !== "rows") throw new TypeError("raw records have no XLSX form");
      let sheet = this.sheet ?? this.openSheet();
      for (const row of input.rows) {
        if (this.sheetRows >= (this.options.maxRowsPerSheet ?? XLSX_MAX_ROWS)) sheet = this.openSheet();
        const added = sheet.addRow(this.cells(row));
        const styles = this.cellStyles;
        for (let i = 0; i < styles.length; i++) added.getCell(i + 1).style = styles[i]!;
        added.commit();
        this.sheetRows += 1;
      }
    } catch (err) {
      done(err as Error);
      return;
    }
    this.afterBatch(done);
  }

  /**
   * Takes the next batch once the zip has caught up and our reader is not behind. The backlog is
   * polled: whether the inner stream emits "drain" depends on its high-water mark.
   */
  private afterBatch(done: TransformCallback): void {
    if (this.sheet && zipBacklog(this.sheet) > MAX_ZIP_BACKLOG) {
      setTimeout(() => this.afterBatch(done), 5);
      return;
    }
    setImmediate(() => {
      if (this.blocked) this.waiting = () => done();
      else done();
    });
  }

  override _flush(done: TransformCallback): void {
    this.open()
      .then(async (workbook) => {
        if (!this.sheet) this.openSheet();
        this.sheet!.commit();
        await workbook.commit();
      })
      .then(
        () => done(),
        (err: unknown) => done(err as Error),
      );
  }
}

export function createXlsxWriter(options: WriterOptions): Transform {
  return new XlsxWriter(options);
}

/**
 * U+FFFE, U+FFFF and lone surrogates are not allowed in XML 1.0 and exceljs passes them through
 * (it drops only the C0 controls), which makes the whole workbook unreadable: one such character
 * in a message would break a tenant's file. They become U+FFFD, the replacement character.
 */
function xmlSafe(text: string): string {
  return /[\uFFFE\uFFFF\uD800-\uDFFF]/.test(text) ? text.replace(/[\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD") : text;
}
