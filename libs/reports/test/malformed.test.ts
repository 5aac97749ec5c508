import { describe, expect, it } from "vitest";
import JSZip from "jszip";
import {
  getReport,
  InvalidReportParamsError,
  MalformedInputError,
  parsePlatformTime,
  RecordMapper,
  transformStream,
  UnknownReportError,
} from "../src/index.js";
import { BufferSink, chunkedInput, transformToBuffer } from "./helpers.js";

const good = (id: string) => JSON.stringify({ info: { conversationId: id, startTimeL: Date.UTC(2026, 0, 5, 9), status: "CLOSE" } });

const input = [
  good("a"),
  "{not json",
  JSON.stringify({ info: { startTimeL: 1 } }),
  "",
  JSON.stringify({ info: { conversationId: "x", startTimeL: "yesterday" } }),
  JSON.stringify({ info: { conversationId: "y", startTime: "2026-01-05 09:00:00.000+0000" }, messageRecords: [{ messageId: "m", timeL: "soon" }] }),
  JSON.stringify([1, 2]),
  good("b"),
].join("\n");

describe("malformed records", () => {
  it("skips and counts them by default, with the first examples", async () => {
    const { result, output } = await transformToBuffer({ report: "messaging-conversations", version: 1, format: "ndjson", timeZone: "UTC" }, input);
    expect(result.records).toBe(7);
    expect(result.rows).toBe(2);
    expect(result.skipped).toBe(5);
    expect(result.skippedExamples).toEqual([
      { line: 2, reason: expect.stringMatching(/^invalid JSON/) as unknown as string },
      { line: 3, reason: "info.conversationId: missing" },
      { line: 5, reason: "info.startTimeL: expected epoch milliseconds, got a string" },
      { line: 6, reason: "messageRecords[0].timeL: expected epoch milliseconds, got a string" },
      { line: 7, reason: "expected an object, got an array" },
    ]);
    const ids = output.toString().trim().split("\n").map((l) => (JSON.parse(l) as { conversationId: string }).conversationId);
    expect(ids).toEqual(["a", "b"]);
  });

  it("keeps only as many examples as asked", async () => {
    const { result } = await transformToBuffer(
      { report: "messaging-conversations", version: 1, format: "csv", timeZone: "UTC", options: { maxSkippedExamples: 2 } },
      input,
    );
    expect(result.skipped).toBe(5);
    expect(result.skippedExamples.map((e) => e.line)).toEqual([2, 3]);
  });

  it("fails the whole transform under the fail policy, naming the line", async () => {
    await expect(
      transformToBuffer({ report: "messaging-conversations", version: 1, format: "csv", timeZone: "UTC", options: { malformed: "fail" } }, input),
    ).rejects.toMatchObject({ name: "MalformedInputError", line: 2, code: "report.malformed_input", permanent: true });
    await expect(
      transformToBuffer({ report: "messaging-conversations", version: 1, format: "xlsx", timeZone: "UTC", options: { malformed: "fail" } }, [good("a"), good("b"), JSON.stringify({ info: {} })].join("\n")),
    ).rejects.toBeInstanceOf(MalformedInputError);
  });

  it("checks raw records too", async () => {
    const { result, output } = await transformToBuffer({ report: "messaging-conversations-raw", version: 1, format: "json", timeZone: "UTC" }, input);
    expect(result.skipped).toBe(3);
    expect(result.rows).toBe(4);
    // Raw records leave byte for byte as they came.
    const lines = input.split("\n");
    expect(output.toString()).toBe(`[\n${lines[0]},\n${lines[4]},\n${lines[5]},\n${lines[7]}\n]\n`);
  });

  it("treats an over-long line as one malformed record and carries on", async () => {
    const long = `{"info":{"startTimeL":0,"conversationId":"${"z".repeat(5000)}"}}`;
    const sink = new BufferSink();
    const result = await transformStream({ report: "messaging-conversations", version: 1, format: "ndjson", timeZone: "UTC" }, chunkedInput([good("a"), long, good("b")].join("\n"), 100), sink);
    expect(result.rows).toBe(3);
    expect(result.skipped).toBe(0);
    // With a small line limit the long line is skipped without being held.
    const mapper = new RecordMapper({ version: getReport("messaging-conversations", 1).version, params: {}, malformed: "skip", maxLineBytes: 1000 });
    const batches: unknown[] = [];
    mapper.on("data", (b) => batches.push(b));
    const done = new Promise((r) => mapper.on("end", r));
    const bytes = Buffer.from([good("a"), long, good("b"), ""].join("\n"));
    for (let i = 0; i < bytes.length; i += 300) mapper.write(bytes.subarray(i, i + 300));
    mapper.end();
    await done;
    expect(mapper.stats).toMatchObject({ records: 3, rows: 2, skipped: 1, skippedExamples: [{ line: 2, reason: "line longer than 1000 bytes" }] });
  });

  it("accepts CRLF line ends, a leading byte order mark and a missing final newline", async () => {
    const { result } = await transformToBuffer({ report: "messaging-conversations", version: 1, format: "csv", timeZone: "UTC" }, `\uFEFF${good("a")}\r\n${good("b")}`);
    expect(result).toMatchObject({ records: 2, rows: 2, skipped: 0 });
  });

  it("refuses unknown formats and invalid params before reading anything", async () => {
    await expect(transformStream({ report: "admin-users", version: 1, format: "xml" as never, timeZone: "UTC" }, chunkedInput(""), new BufferSink())).rejects.toBeInstanceOf(UnknownReportError);
    await expect(
      transformStream({ report: "admin-users", version: 1, format: "csv", timeZone: "UTC", params: { includeDeleted: "yes" } }, chunkedInput(""), new BufferSink()),
    ).rejects.toBeInstanceOf(InvalidReportParamsError);
    await expect(transformStream({ report: "admin-users", version: 1, format: "csv", timeZone: "Mars/Olympus" }, chunkedInput(""), new BufferSink())).rejects.toThrow(/time zone/);
  });

  it("writes a header (or an empty array) for an empty input", async () => {
    expect((await transformToBuffer({ report: "admin-skills", version: 1, format: "csv", timeZone: "UTC" }, "")).output.toString()).toBe(
      "id,name,description,deleted,maxWaitTime,skillOrder,canTransfer,skillTransferList,lobIds,dateUpdated\r\n",
    );
    expect((await transformToBuffer({ report: "admin-skills", version: 1, format: "json", timeZone: "UTC" }, "")).output.toString()).toBe("[]\n");
    expect((await transformToBuffer({ report: "admin-skills", version: 1, format: "ndjson", timeZone: "UTC" }, "")).output.toString()).toBe("");
  });
});

describe("platform times", () => {
  it("reads the platform's text form with and without a zone", () => {
    expect(parsePlatformTime("2016-08-29 14:30:24.565+0000")).toBe(Date.UTC(2016, 7, 29, 14, 30, 24, 565));
    expect(parsePlatformTime("2016-08-29 14:30:24.565+0130")).toBe(Date.UTC(2016, 7, 29, 13, 0, 24, 565));
    expect(parsePlatformTime("2017-11-13 13:20:01")).toBe(Date.UTC(2017, 10, 13, 13, 20, 1));
    expect(parsePlatformTime("undefined")).toBeNaN();
  });
});

describe("epoch milliseconds that are not instants", () => {
  const record = (id: string, startTimeL: number) => JSON.stringify({ info: { conversationId: id, startTimeL, status: "CLOSE" } });
  // Beyond what a Date can hold, fractional, and negative other than the platform's -1 ("not yet").
  const input = [record("ok", Date.UTC(2026, 0, 1)), record("too-big", 1e16), record("fractional", 1774742540420.5), record("before-1970", -86_400_000), record("ok-2", Date.UTC(2026, 0, 2))].join("\n");

  it("are skipped as malformed, naming the field, instead of rendered as garbage", async () => {
    const { result, output } = await transformToBuffer({ report: "messaging-conversations", version: 1, format: "csv", timeZone: "Europe/Berlin" }, input);
    const rows = output.toString().trim().split("\r\n").slice(1);
    expect(rows.map((row) => row.split(",")[0])).toEqual(["ok", "ok-2"]);
    for (const row of rows) expect(row.split(",")[1]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$/);
    expect(result.skipped).toBe(3);
    expect(result.skippedExamples).toEqual([
      { line: 2, reason: "info.startTimeL: expected whole epoch milliseconds from 1970 to 9999, got 10000000000000000" },
      { line: 3, reason: "info.startTimeL: expected whole epoch milliseconds from 1970 to 9999, got 1774742540420.5" },
      { line: 4, reason: "info.startTimeL: expected whole epoch milliseconds from 1970 to 9999, got -86400000" },
    ]);
  });

  it("never write NaN into an XLSX date cell", async () => {
    const { result, output } = await transformToBuffer({ report: "messaging-conversations", version: 1, format: "xlsx", timeZone: "Europe/Berlin" }, input);
    expect(result.skipped).toBe(3);
    const zip = await JSZip.loadAsync(output);
    expect(await zip.file("xl/worksheets/sheet1.xml")!.async("string")).not.toContain("NaN");
  });
});
