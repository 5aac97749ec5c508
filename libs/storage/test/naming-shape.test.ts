import { describe, expect, it } from "vitest";
import { fileNameShape, reportFileName, validateFileNamePattern, type FileNameShapeInput } from "../src/index.js";

const task = (overrides: Partial<FileNameShapeInput> = {}): FileNameShapeInput => ({ description: "Daily export", reportId: "messaging-conversations", format: "csv", options: {}, ...overrides });
const withPattern = (fileNamePattern: string, overrides: Partial<FileNameShapeInput> = {}) => task({ ...overrides, options: { fileNamePattern } });
const clash = (a: FileNameShapeInput, b: FileNameShapeInput) => fileNameShape(a) !== null && fileNameShape(a) === fileNameShape(b);

describe("fileNameShape", () => {
  it("leaves the window symbolic and keeps the extensions", () => {
    expect(fileNameShape(task())).toBe("daily-export_{instant}_{instant}.csv.pgp");
    expect(fileNameShape(withPattern("{report}_{startDate}_{startTime}", { format: "NDJSON" }))).toBe("messaging-conversations_{date}_{time}.ndjson.pgp");
    expect(fileNameShape(task({ options: { armor: true, dateFolders: true } }))).toBe("{date}/daily-export_{instant}_{instant}.csv.asc");
  });

  it("gives descriptions that slugify alike one shape", () => {
    expect(clash(task({ description: "Daily export" }), task({ description: "daily export!" }))).toBe(true);
    expect(clash(task({ description: "Daily export" }), task({ description: "Daily export", reportId: "agent-activity" }))).toBe(true);
    expect(clash(task({ description: "Daily export" }), task({ description: "Weekly export" }))).toBe(false);
  });

  it("gives one pattern one shape whatever the report, unless the pattern names it", () => {
    expect(clash(withPattern("export_{startDate}"), withPattern("export_{startDate}", { reportId: "agent-activity", description: "other" }))).toBe(true);
    expect(clash(withPattern("export_{report}_{startDate}"), withPattern("export_{report}_{startDate}", { reportId: "agent-activity" }))).toBe(false);
    expect(clash(withPattern("{task}_{startDate}"), withPattern("{task}_{startDate}", { description: "Nightly export" }))).toBe(false);
  });

  it("never clashes with {runId}: every run has its own name", () => {
    expect(fileNameShape(withPattern("export_{runId}"))).toBeNull();
    expect(clash(withPattern("export_{runId}"), withPattern("export_{runId}"))).toBe(false);
  });

  it("treats the start and end of a window alike: one task's end is another's start", () => {
    expect(clash(withPattern("a-{startDate}"), withPattern("a-{endDate}"))).toBe(true);
    expect(clash(withPattern("a-{start}"), withPattern("a-{end}"))).toBe(true);
    expect(clash(withPattern("a-{startDate}-{startTime}"), withPattern("a-{endDate}-{endTime}"))).toBe(true);
    expect(clash(withPattern("a-{startDate}"), withPattern("a-{start}"))).toBe(false);
  });

  it("matches a pattern spelling out the default name, and text against a slug", () => {
    expect(clash(task(), withPattern("daily-export_{start}_{end}", { description: "something else" }))).toBe(true);
    expect(clash(withPattern("{task}-{startDate}"), withPattern("daily-export-{startDate}", { description: "x" }))).toBe(true);
  });

  it("tells apart what lands under another name or folder: format, armor, date folders", () => {
    expect(clash(task(), task({ format: "json" }))).toBe(false);
    expect(clash(task(), task({ options: { armor: true } }))).toBe(false);
    expect(clash(task(), task({ options: { dateFolders: true } }))).toBe(false);
    expect(clash(task({ options: { dateFolders: true } }), task({ options: { dateFolders: true, compression: false } }))).toBe(true);
  });

  it("folds case: SFTP servers on Windows do not tell Export from export", () => {
    expect(clash(withPattern("Export_{startDate}"), withPattern("export_{startDate}"))).toBe(true);
  });

  it("agrees with the names reportFileName gives", () => {
    const window = { windowStart: new Date("2026-11-22T00:00:00Z"), windowEnd: new Date("2026-11-23T00:00:00Z"), zone: "UTC", format: "csv" };
    const a = reportFileName({ ...window, description: "Daily export" });
    const b = reportFileName({ ...window, description: "daily export!" });
    expect(a).toBe(b);
    const c = reportFileName({ ...window, description: "one", pattern: "export_{startDate}", reportId: "messaging-conversations" });
    const d = reportFileName({ ...window, description: "two", pattern: "export_{startDate}", reportId: "agent-activity" });
    expect(c).toBe(d);
  });
});

describe("file name patterns and Windows device names", () => {
  it.each(["nul.{startDate}", "con.{runId}", "CON.{start}", "Aux.{startDate}.x", "lpt1.{start}", "com9.{endDate}", "prn.{start}"])("refuses %j", (pattern) => {
    expect(validateFileNamePattern(pattern).join(" | ")).toMatch(/Windows reserves that name/);
  });

  it.each(["nul_{startDate}", "null.{startDate}", "console.{start}", "com10.{start}", "{task}.{startDate}", "my-con.{start}", "nul{startDate}"])("accepts %j", (pattern) => {
    expect(validateFileNamePattern(pattern)).toEqual([]);
  });
});
