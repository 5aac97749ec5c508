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
import { BufferSink, chunkedInput, readXlsx, transformToBuffer } from "./helpers.js";

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

describe("a start the platform marks \"not yet\" in epoch ms (-1)", () => {
  it("is read from the text form beside it, as the fetcher places the record; with no text either it is missing", async () => {
    const input = [
      JSON.stringify({ info: { conversationId: "text", startTimeL: -1, startTime: "2026-01-05 09:00:00.000+0000", status: "CLOSE" } }),
      JSON.stringify({ info: { conversationId: "none", startTimeL: -1, startTime: "undefined", status: "CLOSE" } }),
    ].join("\n");
    const { result, output } = await transformToBuffer({ report: "messaging-conversations", version: 1, format: "csv", timeZone: "UTC" }, input);
    const rows = output.toString().trim().split("\r\n").slice(1);
    expect(rows.map((row) => row.split(",").slice(0, 2))).toEqual([["text", "2026-01-05T09:00:00.000+00:00"]]);
    expect(result.skippedExamples).toEqual([{ line: 2, reason: "info.startTimeL: missing" }]);
  });
});

describe("platform times that are not real times", () => {
  it("reads nothing out of range as some other time", () => {
    // Date.UTC would read these as 1901, 2026-03-02, 2027-02-15 02:02:01 and an offset of 99:60.
    expect(parsePlatformTime("0001-01-01 00:00:00")).toBe(new Date("0001-01-01T00:00:00Z").getTime());
    expect(parsePlatformTime("0099-12-31 00:00:00+0000")).toBe(new Date("0099-12-31T00:00:00Z").getTime());
    for (const text of [
      "2026-02-30 10:00:00+0000",
      "2025-02-29 10:00:00",
      "2026-04-31 10:00:00",
      "2026-13-45 25:61:61",
      "2026-00-10 10:00:00",
      "2026-01-00 10:00:00",
      "2026-01-15 24:00:00",
      "2026-01-15 09:60:00",
      "2026-01-15 09:30:60",
      "2026-01-15 09:30:00.000+9960",
      "2026-01-15 09:30:00.000+1401",
      "2026-01-15 09:30:00.000-0060",
    ]) {
      expect(parsePlatformTime(text), text).toBeNaN();
    }
    expect(parsePlatformTime("2024-02-29 10:00:00")).toBe(Date.UTC(2024, 1, 29, 10));
    expect(parsePlatformTime("2000-02-29 23:59:59.999")).toBe(Date.UTC(2000, 1, 29, 23, 59, 59, 999));
    expect(parsePlatformTime("2026-01-15 09:30:00.000+14:00")).toBe(Date.UTC(2026, 0, 14, 19, 30));
    expect(parsePlatformTime("2026-01-15 09:30:00.000-1200")).toBe(Date.UTC(2026, 0, 15, 21, 30));
  });

  it("skips a record whose time text is not a real time from 1970 to 9999", async () => {
    const skill = (id: number, dateUpdated: string) => JSON.stringify({ id, name: `s${id}`, dateUpdated });
    const input = [
      skill(1, "2026-01-15 09:30:00.000+0000"),
      skill(2, "0001-01-01 00:00:00"),
      skill(3, "2026-02-30 10:00:00+0000"),
      skill(4, "2026-13-45 25:61:61"),
      skill(5, "2026-01-15 09:30:00.000+9960"),
      skill(6, "1969-12-31 23:59:59"),
      skill(7, "9999-12-31 23:00:00+0000"),
      skill(8, "2024-02-29 10:00:00"),
    ].join("\n");
    const { result, output } = await transformToBuffer({ report: "admin-skills", version: 1, format: "csv", timeZone: "UTC", options: { maxSkippedExamples: 10 } }, input);
    expect(output.toString().trim().split("\r\n").slice(1).map((row) => [row.split(",")[0], row.split(",").pop()])).toEqual([
      ["1", "2026-01-15T09:30:00.000+00:00"],
      ["8", "2024-02-29T10:00:00.000+00:00"],
    ]);
    expect(result.skippedExamples).toEqual([
      { line: 2, reason: 'dateUpdated: expected a time from 1970 to 9999, got "0001-01-01 00:00:00"' },
      { line: 3, reason: 'dateUpdated: not a time: "2026-02-30 10:00:00+0000"' },
      { line: 4, reason: 'dateUpdated: not a time: "2026-13-45 25:61:61"' },
      { line: 5, reason: 'dateUpdated: not a time: "2026-01-15 09:30:00.000+9960"' },
      { line: 6, reason: 'dateUpdated: expected a time from 1970 to 9999, got "1969-12-31 23:59:59"' },
      { line: 7, reason: 'dateUpdated: expected a time from 1970 to 9999, got "9999-12-31 23:00:00+0000"' },
    ]);
  });
});

describe("instants late in 9999", () => {
  // 23:00 UTC on the last day of 9999 is already year 10000 east of UTC+1.
  const skills = [
    JSON.stringify({ id: "late", name: "n", dateUpdatedL: Date.UTC(9999, 11, 31, 23, 0, 0) }),
    JSON.stringify({ id: "latest", name: "n", dateUpdatedL: Date.UTC(9999, 11, 31, 9, 59, 59, 999) }),
  ].join("\n");

  it("are skipped unless every zone (to +14:00) still writes them in 9999", async () => {
    for (const [timeZone, latest] of [
      ["Asia/Tokyo", "9999-12-31T18:59:59.999+09:00"],
      ["Pacific/Kiritimati", "9999-12-31T23:59:59.999+14:00"],
      ["UTC", "9999-12-31T09:59:59.999+00:00"],
    ] as const) {
      const { result, output } = await transformToBuffer({ report: "admin-skills", version: 1, format: "csv", timeZone }, skills);
      expect(output.toString().trim().split("\r\n").slice(1), timeZone).toEqual([`latest,n,,,,,,,,${latest}`]);
      expect(result.skippedExamples).toEqual([{ line: 1, reason: "dateUpdatedL: expected whole epoch milliseconds from 1970 to 9999, got 253402297200000" }]);
    }
  });

  it("never reach year 10000 in an XLSX date cell", async () => {
    const { result, output } = await transformToBuffer({ report: "admin-skills", version: 1, format: "xlsx", timeZone: "Pacific/Kiritimati" }, skills);
    expect(result.skipped).toBe(1);
    const [sheet] = await readXlsx(output);
    expect(sheet!.rows.slice(1).map((r) => r[9])).toEqual([{ date: "9999-12-31T23:59:59.999Z" }]);
  });

  it("the epoch itself stays writable in the zone furthest behind (-12:00)", async () => {
    const { result, output } = await transformToBuffer({ report: "admin-skills", version: 1, format: "csv", timeZone: "Etc/GMT+12" }, JSON.stringify({ id: "epoch", name: "n", dateUpdatedL: 0 }));
    expect(result.skipped).toBe(0);
    expect(output.toString().trim().split("\r\n")[1]).toBe("epoch,n,,,,,,,,1969-12-31T12:00:00.000-12:00");
  });
});

describe("interval lengths that are not whole minutes up to a day", () => {
  const T = Date.UTC(2026, 2, 29, 0, 30);
  const queue = (skillId: number, intervalMinutes: unknown, timestamp = T) => JSON.stringify({ timestamp, intervalMinutes, skillId, unassignedConversations: 3 });
  const input = [
    queue(1, 15),
    queue(2, 1e12),
    queue(3, 0.123456),
    queue(4, -15),
    queue(5, 0),
    queue(6, 7.5),
    queue(7, 1441),
    queue(8, "15"),
    queue(9, 1440),
    queue(10, 1),
    // The interval would end in year 10000 in some zone.
    queue(11, 15, Date.UTC(9999, 11, 31, 9, 50)),
  ].join("\n");
  const reasons = [
    { line: 2, reason: "intervalMinutes: expected whole minutes from 1 to 1440, got 1000000000000" },
    { line: 3, reason: "intervalMinutes: expected whole minutes from 1 to 1440, got 0.123456" },
    { line: 4, reason: "intervalMinutes: expected whole minutes from 1 to 1440, got -15" },
    { line: 5, reason: "intervalMinutes: expected whole minutes from 1 to 1440, got 0" },
    { line: 6, reason: "intervalMinutes: expected whole minutes from 1 to 1440, got 7.5" },
    { line: 7, reason: "intervalMinutes: expected whole minutes from 1 to 1440, got 1441" },
    { line: 8, reason: "intervalMinutes: expected a number, got a string" },
    { line: 11, reason: `timestamp: the 15-minute interval at ${Date.UTC(9999, 11, 31, 9, 50)} ends after 9999` },
  ];
  const options = { maxSkippedExamples: 10 };

  it("are skipped as malformed, with every written end a real time after its start", async () => {
    const { result, output } = await transformToBuffer({ report: "wfm-queue-health", version: 1, format: "csv", timeZone: "Europe/Berlin", options }, input);
    expect(output.toString().trim().split("\r\n").slice(1).map((row) => row.split(",").slice(0, 4).join(","))).toEqual([
      "2026-03-29T01:30:00.000+01:00,2026-03-29T01:45:00.000+01:00,15,1",
      "2026-03-29T01:30:00.000+01:00,2026-03-30T02:30:00.000+02:00,1440,9",
      "2026-03-29T01:30:00.000+01:00,2026-03-29T01:31:00.000+01:00,1,10",
    ]);
    expect(result).toMatchObject({ rows: 3, skipped: 8, skippedExamples: reasons });
    const json = await transformToBuffer({ report: "wfm-queue-health", version: 1, format: "json", timeZone: "Europe/Berlin", options }, input);
    expect(json.result.skippedExamples).toEqual(reasons);
    expect(json.output.toString()).not.toMatch(/Invalid|NaN/);
    const raw = await transformToBuffer({ report: "wfm-queue-health-raw", version: 1, format: "ndjson", timeZone: "UTC", options }, input);
    expect(raw.result).toMatchObject({ rows: 3, skippedExamples: reasons });
  });

  it("never write NaN or a fraction into XLSX", async () => {
    const { result, output } = await transformToBuffer({ report: "wfm-queue-health", version: 1, format: "xlsx", timeZone: "Europe/Berlin" }, input);
    expect(result.skipped).toBe(8);
    const [sheet] = await readXlsx(output);
    expect(sheet!.rows.slice(1).map((r) => r.slice(0, 3))).toEqual([
      [{ date: "2026-03-29T01:30:00.000Z" }, { date: "2026-03-29T01:45:00.000Z" }, 15],
      [{ date: "2026-03-29T01:30:00.000Z" }, { date: "2026-03-30T02:30:00.000Z" }, 1440],
      [{ date: "2026-03-29T01:30:00.000Z" }, { date: "2026-03-29T01:31:00.000Z" }, 1],
    ]);
  });

  it("skips an agent-activity interval that would start before 1970", async () => {
    const activity = (agentId: number, timestamp: number, intervalMinutes: number) => JSON.stringify({ timestamp, intervalMinutes, agentId, states: [] });
    const { result, output } = await transformToBuffer(
      { report: "wfm-agent-activity", version: 1, format: "csv", timeZone: "UTC" },
      [activity(1, 0, 15), activity(2, 900_000, 15), activity(3, T, 0.5)].join("\n"),
    );
    expect(output.toString().trim().split("\r\n").slice(1).map((row) => row.split(",").slice(0, 4).join(","))).toEqual([
      "1970-01-01T00:00:00.000+00:00,1970-01-01T00:15:00.000+00:00,15,2",
    ]);
    expect(result.skippedExamples).toEqual([
      { line: 1, reason: "timestamp: the 15-minute interval at 0 starts before 1970" },
      { line: 3, reason: "intervalMinutes: expected whole minutes from 1 to 1440, got 0.5" },
    ]);
  });
});

describe("over-long lines", () => {
  const line = JSON.stringify({ info: { conversationId: "c", startTimeL: Date.UTC(2026, 0, 5, 9), status: "CLOSE", padding: "x".repeat(1500) } });

  it("are dropped whatever pieces the input arrives in", async () => {
    for (const chunkSize of [5000, 1747, 1000, 100, 7, 1]) {
      const sink = new BufferSink();
      const result = await transformStream(
        { report: "messaging-conversations", version: 1, format: "csv", timeZone: "UTC" },
        chunkedInput([good("a"), line, line, good("b"), line, ""].join("\n"), chunkSize),
        sink,
        { maxLineBytes: 1000 },
      );
      expect(result, `pieces of ${chunkSize} bytes`).toMatchObject({
        records: 5,
        rows: 2,
        skipped: 3,
        skippedExamples: [2, 3, 5].map((n) => ({ line: n, reason: "line longer than 1000 bytes" })),
      });
      expect(sink.buffer.toString().trim().split("\r\n").slice(1).map((row) => row.split(",")[0])).toEqual(["a", "b"]);
    }
  });

  it("are measured without their newline, the same in one piece or many", async () => {
    const exactly = (n: number) => {
      const text = JSON.stringify({ info: { conversationId: "c", startTimeL: 0, padding: "" } });
      return text.replace('"padding":""', `"padding":"${"x".repeat(n - text.length)}"`);
    };
    for (const chunkSize of [10_000, 1]) {
      const { result } = await transformToBuffer(
        { report: "messaging-conversations", version: 1, format: "ndjson", timeZone: "UTC" },
        [exactly(1000), exactly(1001), `${exactly(999)}\r`, exactly(1000)].join("\n"),
        { maxLineBytes: 1000 },
        chunkSize,
      );
      expect(result, `pieces of ${chunkSize} bytes`).toMatchObject({ records: 4, rows: 3, skipped: 1, skippedExamples: [{ line: 2, reason: "line longer than 1000 bytes" }] });
    }
  });
});

describe("number ids a double cannot hold", () => {
  // JSON.parse rounds 12345678901234567890 to 12345678901234567000 and 9007199254740993 to …992.
  const queue = (skillId: string) => `{"timestamp":${Date.UTC(2026, 2, 29, 0, 30)},"intervalMinutes":15,"skillId":${skillId}}`;
  const input = [queue("12345678901234567890"), queue("9007199254740993"), queue("1.5"), queue("9007199254740991"), queue('"12345678901234567890"'), queue("-1")].join("\n");

  it("are skipped as malformed instead of written as another id; text ids are kept as they are", async () => {
    const { result, output } = await transformToBuffer({ report: "wfm-queue-health", version: 1, format: "csv", timeZone: "UTC" }, input);
    expect(output.toString().trim().split("\r\n").slice(1).map((row) => row.split(",")[3])).toEqual(["9007199254740991", "12345678901234567890", "-1"]);
    expect(result.skippedExamples).toEqual([
      { line: 1, reason: "skillId: expected an id (text, or a whole number of at most 9007199254740991), got 12345678901234567000" },
      { line: 2, reason: "skillId: expected an id (text, or a whole number of at most 9007199254740991), got 9007199254740992" },
      { line: 3, reason: "skillId: expected an id (text, or a whole number of at most 9007199254740991), got 1.5" },
    ]);
  });

  it("are checked for optional ids and id lists too", async () => {
    const activity = (skillId: string) => `{"timestamp":${Date.UTC(2026, 2, 29, 0, 30)},"intervalMinutes":15,"agentId":7,"skillId":${skillId},"states":[]}`;
    const ops = await transformToBuffer({ report: "wfm-agent-activity", version: 1, format: "csv", timeZone: "UTC" }, [activity("12345678901234567890"), activity("12")].join("\n"));
    expect(ops.result.skippedExamples).toEqual([{ line: 1, reason: "skillId: expected an id (text, or a whole number of at most 9007199254740991), got 12345678901234567000" }]);
    expect(ops.result.rows).toBe(1);
    const skill = (list: string) => `{"id":1,"name":"s","skillTransferList":${list}}`;
    const admin = await transformToBuffer({ report: "admin-skills", version: 1, format: "csv", timeZone: "UTC" }, [skill("[2,12345678901234567890]"), skill('[2,"12345678901234567890"]')].join("\n"));
    expect(admin.result.skippedExamples).toEqual([
      { line: 1, reason: "skillTransferList[1]: expected an id (text, or a whole number of at most 9007199254740991), got 12345678901234567000" },
    ]);
    expect(admin.output.toString()).toContain("2;12345678901234567890");
  });
});
