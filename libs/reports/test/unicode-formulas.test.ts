import { parse } from "csv-parse/sync";
import JSZip from "jszip";
import { describe, expect, it } from "vitest";
import { createCsvWriter, createXlsxWriter, isFormulaLike, neutraliseFormula, ZonedTime, type Column, type Row } from "../src/index.js";
import { BufferSink, readXlsx, transformToBuffer } from "./helpers.js";
import { XLSX_MAX_CELL_CHARS } from "../src/index.js";

/** Texts that break naive writers; each must come back exactly. */
const TEXTS = [
  "em dash — and en dash –",
  "“curly” ‘quotes’",
  "emoji 😀🎉 family 👨‍👩‍👧‍👦 flag 🇯🇵 skin 👍🏽",
  "中文 日本語 한국어",
  "مرحبا بالعالم — שלום עולם",
  "zero\u200Bwidth\u200Djoiner\u200C",
  "line one\nline two",
  "windows\r\nline end",
  'quote " inside, and "quoted"',
  "comma, separated",
  "trailing space ",
  "combining e\u0301 vs é",
];

/** Texts a spreadsheet would run; each starts with one of = + - @ tab CR. */
const FORMULAS = ["=SUM(A1:A9)", "+cmd|' /C calc'!A0", "-2+3", "@SUM(1,1)", "\t=1+1", "\r=1+1"];

function conversation(i: number, text: string, skillName: string): string {
  return `${JSON.stringify({
    info: { conversationId: `c-${i}`, startTimeL: Date.UTC(2026, 5, 1, 12, 0, i), latestSkillName: skillName, status: "CLOSE" },
    messageRecords: [{ messageId: `m-${i}`, seq: 0, timeL: Date.UTC(2026, 5, 1, 12, 1, i), sentBy: "Consumer", participantId: "p", type: "TEXT_PLAIN", messageData: { msg: { text } } }],
  })}\n`;
}

const all = [...TEXTS, ...FORMULAS];
const input = all.map((t, i) => conversation(i, t, t));

async function csvRows(options: { keepFormulas?: boolean; csvBom?: boolean } = {}): Promise<{ header: string[]; rows: string[][]; raw: Buffer }> {
  const { output } = await transformToBuffer({ report: "messaging-messages", version: 1, format: "csv", timeZone: "Asia/Tokyo", options }, input);
  const records = parse(output, { bom: true }) as string[][];
  return { header: records[0]!, rows: records.slice(1), raw: output };
}

describe("text round-trips", () => {
  it("CSV keeps every character and neutralises formulas", async () => {
    const { header, rows, raw } = await csvRows();
    const text = header.indexOf("text");
    expect(rows.map((r) => r[text])).toEqual([...TEXTS, ...FORMULAS.map((f) => `'${f}`)]);
    // RFC 4180: CRLF between records; embedded line breaks stay inside quotes.
    expect(raw.toString("utf8").startsWith("conversationId,")).toBe(true);
    expect(raw.toString("utf8").split("\r\n")[1]).toMatch(/^c-0,/);
  });

  it("CSV keeps formulas raw when asked, and can start with a BOM", async () => {
    const { header, rows, raw } = await csvRows({ keepFormulas: true, csvBom: true });
    expect(rows.map((r) => r[header.indexOf("text")])).toEqual(all);
    expect(raw.subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
  });

  it("XLSX keeps every character and neutralises formulas", async () => {
    const { output } = await transformToBuffer({ report: "messaging-messages", version: 1, format: "xlsx", timeZone: "Asia/Tokyo" }, input);
    const [sheet] = await readXlsx(output);
    const header = sheet!.rows[0] as string[];
    const texts = sheet!.rows.slice(1).map((r) => r[header.indexOf("text")]);
    // Carriage returns too: written as _x000D_, as XML itself would read one back as a line feed.
    expect(texts).toEqual([...TEXTS, ...FORMULAS.map((f) => `'${f}`)]);
    const raw = await transformToBuffer({ report: "messaging-messages", version: 1, format: "xlsx", timeZone: "Asia/Tokyo", options: { keepFormulas: true } }, input);
    const [rawSheet] = await readXlsx(raw.output);
    expect(rawSheet!.rows.slice(1).map((r) => r[header.indexOf("text")])).toEqual(all);
  });

  it("XLSX types cells: numbers, booleans and dates in the tenant's wall-clock time", async () => {
    const record = JSON.stringify({
      info: { conversationId: "c", startTimeL: Date.UTC(2026, 0, 1, 23, 30), endTimeL: Date.UTC(2026, 0, 2, 0, 0), duration: 1_800_000, status: "CLOSE", csat: 4, latestSkillId: 7 },
      conversationSurveys: [{ surveyType: "Satisfaction", surveyData: [{ question: "Confirm Resolution", answer: "Yes" }] }],
    });
    const { output } = await transformToBuffer({ report: "messaging-conversations", version: 1, format: "xlsx", timeZone: "Asia/Tokyo" }, `${record}\n`);
    const [sheet] = await readXlsx(output);
    const header = sheet!.rows[0] as string[];
    const row = sheet!.rows[1]!;
    const cell = (key: string) => row[header.indexOf(key)];
    expect(cell("startTime")).toEqual({ date: "2026-01-02T08:30:00.000Z" });
    expect(cell("durationSeconds")).toBe(1800);
    expect(cell("csat")).toBe(4);
    expect(cell("fcr")).toBe(true);
    expect(cell("skillId")).toBe("7");
    expect(cell("nps")).toBeNull();
  });

  it("JSON and NDJSON carry text and ISO 8601 times with the zone's offset", async () => {
    for (const format of ["json", "ndjson"] as const) {
      const { output } = await transformToBuffer({ report: "messaging-messages", version: 1, format, timeZone: "America/St_Johns" }, input);
      const text = output.toString("utf8");
      const rows = (format === "json" ? JSON.parse(text) : text.trim().split("\n").map((l) => JSON.parse(l))) as Record<string, unknown>[];
      expect(rows.map((r) => r.text)).toEqual(all);
      expect(rows[0]!.time).toBe("2026-06-01T09:31:00.000-02:30");
    }
  });
});

describe("formula neutralisation", () => {
  it("recognises the dangerous leading characters only", () => {
    for (const f of FORMULAS) expect(isFormulaLike(f)).toBe(true);
    for (const t of ["", "a=b", " =1", "1+1", "'=x"]) expect(isFormulaLike(t)).toBe(false);
    expect(neutraliseFormula("=1")).toBe("'=1");
    // Signed plain numbers are read as numbers, never run (the platform's "-1" ids).
    expect(neutraliseFormula("-1")).toBe("-1");
    expect(neutraliseFormula("+3.5")).toBe("+3.5");
    expect(neutraliseFormula("-1+1")).toBe("'-1+1");
  });

  it("never touches typed number cells", async () => {
    const columns: Column[] = [
      { key: "n", type: "number", description: "" },
      { key: "s", type: "string", description: "" },
    ];
    const writer = createCsvWriter({ columns, time: new ZonedTime("UTC") });
    const sink = new BufferSink();
    writer.pipe(sink);
    writer.end({ kind: "rows", rows: [[-5, "-5x"]] as Row[] });
    await new Promise((r) => sink.on("finish", r));
    expect(sink.buffer.toString()).toBe("n,s\r\n-5,'-5x\r\n");
  });
});

describe("XLSX sheets", () => {
  it("continues on a new sheet, with its own header, when a sheet is full", async () => {
    const columns: Column[] = [
      { key: "n", type: "integer", description: "" },
      { key: "at", type: "datetime", description: "" },
    ];
    const writer = createXlsxWriter({ columns, time: new ZonedTime("UTC"), sheetName: "Data", maxRowsPerSheet: 3 });
    const sink = new BufferSink();
    writer.pipe(sink);
    const rows: Row[] = [1, 2, 3, 4, 5].map((n) => [n, Date.UTC(2026, 0, n)]);
    writer.write({ kind: "rows", rows: rows.slice(0, 3) });
    writer.end({ kind: "rows", rows: rows.slice(3) });
    await new Promise((r) => sink.on("finish", r));
    const sheets = await readXlsx(sink.buffer);
    expect(sheets.map((s) => s.name)).toEqual(["Data", "Data 2", "Data 3"]);
    expect(sheets.map((s) => s.rows.map((r) => r[0]))).toEqual([["n", 1, 2], ["n", 3, 4], ["n", 5]]);
    expect(sheets[2]!.rows[1]![1]).toEqual({ date: "2026-01-05T00:00:00.000Z" });
  });

  it("keeps overflow sheet names within Excel's 31 characters", async () => {
    const columns: Column[] = [{ key: "n", type: "integer", description: "" }];
    const long = "Queue health per skill and inte"; // the catalogue name cut to 31, as the transform passes it
    const writer = createXlsxWriter({ columns, time: new ZonedTime("UTC"), sheetName: long, maxRowsPerSheet: 2 });
    const sink = new BufferSink();
    writer.pipe(sink);
    writer.end({ kind: "rows", rows: [[1], [2], [3]] });
    await new Promise((r) => sink.on("finish", r));
    const sheets = await readXlsx(sink.buffer);
    expect(sheets.map((s) => s.name)).toEqual([long, "Queue health per skill and in 2", "Queue health per skill and in 3"]);
  });

  it("writes a readable workbook whatever characters the text holds (U+FFFE, U+FFFF, lone surrogates)", async () => {
    const columns: Column[] = [{ key: "text", type: "string", description: "" }];
    const writer = createXlsxWriter({ columns, time: new ZonedTime("UTC"), sheetName: "Data" });
    const sink = new BufferSink();
    writer.pipe(sink);
    writer.end({ kind: "rows", rows: [["a\uFFFFb"], ["c\uFFFEd"], ["e\uD800f"], ["g\uDC00h"], ["ok \u{1F600}"]] });
    await new Promise((r) => sink.on("finish", r));
    const [sheet] = await readXlsx(sink.buffer);
    expect(sheet!.rows.map((r) => r[0])).toEqual(["text", "a\uFFFDb", "c\uFFFDd", "e\uFFFDf", "g\uFFFDh", "ok \u{1F600}"]);
  });

  /** One text column of `texts` as an XLSX file: its first sheet's XML, and the texts read back. */
  async function textCells(texts: string[]): Promise<{ xml: string; read: unknown[] }> {
    const columns: Column[] = [{ key: "text", type: "string", description: "" }];
    const writer = createXlsxWriter({ columns, time: new ZonedTime("UTC"), sheetName: "Data", keepFormulas: true });
    const sink = new BufferSink();
    writer.pipe(sink);
    writer.end({ kind: "rows", rows: texts.map((t) => [t]) });
    await new Promise((r) => sink.on("finish", r));
    const xml = await (await JSZip.loadAsync(sink.buffer)).file("xl/worksheets/sheet1.xml")!.async("string");
    const [sheet] = await readXlsx(sink.buffer);
    return { xml, read: sheet!.rows.slice(1).map((r) => r[0]) };
  }

  it("escapes text Excel would read as an _xHHHH_ escape, and control characters, instead of losing them", async () => {
    const texts = [
      "_x0041_",
      "lower _x004a_ too",
      "_x0041_x0042_", // overlapping: both underscores start one
      "_xABCD\u0001", // the control's escape must not complete the text before it
      "a\u0001b\u001Fc\u007Fd",
      "cr\rhere",
      "tab\tand\nline feed",
      "_x00 not one_ _xGGGG_",
    ];
    const { xml, read } = await textCells(texts);
    expect(xml).toContain(">_x005F_x0041_<");
    expect(xml).toContain("lower _x005F_x004a_ too");
    expect(xml).toContain("_x005F_x0041_x005F_x0042_");
    expect(xml).toContain("_x005F_xABCD_x0001_");
    expect(xml).toContain("a_x0001_b_x001F_c_x007F_d");
    expect(xml).toContain("cr_x000D_here");
    // TAB and LF are kept as they are: XML holds them in text.
    expect(xml).toContain("tab\tand\nline feed");
    expect(xml).toContain("_x00 not one_ _xGGGG_");
    // Read back as Excel reads it: every text as written.
    expect(read).toEqual(texts);
  });

  it("keeps an escaped text within the cell limit, never cutting an escape in half", async () => {
    const controls = "\u0001".repeat(XLSX_MAX_CELL_CHARS);
    const mixed = `${"a".repeat(XLSX_MAX_CELL_CHARS - 10)}\u0002\u0003b`;
    const underscore = `${"a".repeat(XLSX_MAX_CELL_CHARS - 10)}_x0041_`;
    const { xml, read } = await textCells([controls, mixed, underscore]);
    const cells = [...xml.matchAll(/<v>([^<]*)<\/v>/g)].map((m) => m[1]!).slice(1);
    expect(cells).toHaveLength(3);
    for (const cell of cells) expect(cell.length).toBeLessThanOrEqual(XLSX_MAX_CELL_CHARS);
    // 32,767 / 7 escapes fit whole; then the plain text up to the limit.
    expect(read[0]).toBe("\u0001".repeat(Math.floor(XLSX_MAX_CELL_CHARS / 7)));
    expect(cells[1]).toBe(`${"a".repeat(XLSX_MAX_CELL_CHARS - 10)}_x0002_`);
    expect(read[1]).toBe(`${"a".repeat(XLSX_MAX_CELL_CHARS - 10)}\u0002`);
    // An underscore cut off from its escape's end is plain text again: the cell reads as a prefix.
    expect(cells[2]!.startsWith(`${"a".repeat(XLSX_MAX_CELL_CHARS - 10)}_x00`)).toBe(true);
    expect(underscore.startsWith(read[2] as string)).toBe(true);
  });
});
