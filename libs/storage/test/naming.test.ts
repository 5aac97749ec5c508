import { describe, expect, it } from "vitest";
import { dateSubfolder, distinctNameTag, fileNamePatternOf, fileNameShape, formatWindowInstant, MAX_SLUG_LENGTH, reportFileName, slugify, validateFileNamePattern } from "../src/index.js";
import { assertValidKey } from "../src/index.js";

const windowStart = new Date("2026-11-21T23:00:00Z");
const windowEnd = new Date("2026-11-22T23:00:00Z");

/** What a file name must never contain to be safe on Windows, POSIX, in S3/GCS keys and URLs. */
const UNSAFE = /[<>:"/\\|?*\p{Cc}\s%#&{}^~[\]`'!$,;=]/u;

describe("reportFileName", () => {
  it("follows <slug>_<start>_<end>.<format>.pgp in the tenant's zone", () => {
    expect(reportFileName({ description: "Daily messaging", windowStart, windowEnd, format: "csv", zone: "Europe/Paris" })).toBe(
      "daily-messaging_2026-11-22T0000+0100_2026-11-23T0000+0100.csv.pgp",
    );
  });

  it("writes UTC and other offsets without a colon", () => {
    expect(reportFileName({ description: "x", windowStart, windowEnd, format: "json", zone: "UTC" })).toBe("x_2026-11-21T2300+0000_2026-11-22T2300+0000.json.pgp");
    expect(reportFileName({ description: "x", windowStart, windowEnd, format: "ndjson", zone: "Asia/Kolkata", encrypted: false })).toBe(
      "x_2026-11-22T0430+0530_2026-11-23T0430+0530.ndjson",
    );
    expect(formatWindowInstant(new Date("2026-07-01T12:00:00Z"), "America/St_Johns")).toBe("2026-07-01T0930-0230");
  });

  it("shows the two offsets of a window across a DST change", () => {
    const name = reportFileName({
      description: "weekly",
      windowStart: new Date("2026-10-24T22:00:00Z"),
      windowEnd: new Date("2026-10-25T23:00:00Z"),
      format: "csv",
      zone: "Europe/Berlin",
    });
    expect(name).toBe("weekly_2026-10-25T0000+0200_2026-10-26T0000+0100.csv.pgp");
  });

  it.each([
    ["reports/2026/../../etc/passwd", "reports-2026-etc-passwd"],
    ["..", "report"],
    ["...hidden.file.", "hidden-file"],
    ["C:\\Users\\admin", "c-users-admin"],
    ["Café Crème — Übersicht", "cafe-creme-ubersicht"],
    ["日本語のレポート", "report"],
    ["emoji 🚚 delivery", "emoji-delivery"],
    ["CON", "con-report"],
    ["lpt1", "lpt1-report"],
    ["nul ", "nul-report"],
    ["a:b*c?d<e>f|g\"h", "a-b-c-d-e-f-g-h"],
    ["tab\tnew\nline\u0000null", "tab-new-line-null"],
    ["   ", "report"],
    ["ﬁle ① ＡＢＣ", "file-1-abc"],
  ])("slugifies %j to %j", (description, slug) => {
    expect(slugify(description)).toBe(slug);
    const name = reportFileName({ description, windowStart, windowEnd, format: "csv", zone: "Europe/Paris" });
    expect(name.startsWith(`${slug}_`)).toBe(true);
    expect(name).not.toMatch(UNSAFE);
    expect(() => assertValidKey(name)).not.toThrow();
  });

  it("caps a very long description without a trailing hyphen", () => {
    const slug = slugify(`${"word ".repeat(100)}end`);
    expect(slug.length).toBeLessThanOrEqual(MAX_SLUG_LENGTH);
    expect(slug).toMatch(/^word(-word)*$/);
    const name = reportFileName({ description: "x".repeat(10_000), windowStart, windowEnd, format: "xlsx", zone: "Pacific/Chatham" });
    expect(Buffer.byteLength(name)).toBeLessThan(255);
  });

  it("sanitises the format and refuses one that gives no extension", () => {
    expect(reportFileName({ description: "r", windowStart, windowEnd, format: "../CSV", zone: "UTC" }).endsWith(".csv.pgp")).toBe(true);
    expect(() => reportFileName({ description: "r", windowStart, windowEnd, format: "..", zone: "UTC" })).toThrow(RangeError);
  });

  it("refuses an unknown zone instead of writing a wrong time", () => {
    expect(() => reportFileName({ description: "r", windowStart, windowEnd, format: "csv", zone: "Mars/Olympus" })).toThrow(RangeError);
  });
});

describe("dateSubfolder", () => {
  it("is the local date the window starts on", () => {
    expect(dateSubfolder(windowStart, "Europe/Paris")).toBe("2026/11/22");
    expect(dateSubfolder(windowStart, "UTC")).toBe("2026/11/21");
    expect(dateSubfolder(new Date("2026-01-05T03:00:00Z"), "America/Los_Angeles")).toBe("2026/01/04");
  });
});

describe("file name patterns", () => {
  const base = { description: "Daily messaging", windowStart, windowEnd, format: "csv", zone: "Europe/Paris", reportId: "messaging-conversations", runId: "0b7c6f4e-1d2a-4c3b-9e8f-112233445566" };

  it("expands every placeholder in the tenant's zone and keeps the extensions", () => {
    const all = "{task}.{report}.{start}.{end}.{startDate}.{endDate}.{startTime}.{endTime}.{runId}";
    expect(validateFileNamePattern(all, "interval")).toEqual([]);
    expect(reportFileName({ ...base, pattern: all })).toBe(
      "daily-messaging.messaging-conversations.2026-11-22T0000+0100.2026-11-23T0000+0100.2026-11-22.2026-11-23.0000.0000.0b7c6f4e-1d2a-4c3b-9e8f-112233445566.csv.pgp",
    );
    expect(reportFileName({ ...base, pattern: "export_{startDate}", encrypted: false, zone: "Asia/Kathmandu" })).toBe("export_2026-11-22.csv");
    expect(reportFileName({ ...base, pattern: "export_{startDate}_{startTime}", zone: "Asia/Kathmandu" })).toBe("export_2026-11-22_0445.csv.pgp");
  });

  it("gives names safe everywhere, whatever the description", () => {
    const name = reportFileName({ ...base, description: "../../etc/passwd {start} 👩‍💻", pattern: "{task}-{start}" });
    expect(name).not.toMatch(/[/\\\s{}]/u);
    expect(name.startsWith("etc-passwd-start")).toBe(true);
  });

  it("refuses patterns that are unsafe, unknown, or would give two windows one name", () => {
    const problems = (pattern: string, frequency?: "daily" | "weekly" | "interval") => validateFileNamePattern(pattern, frequency).join(" | ");
    expect(problems("export_{startDate}", "daily")).toBe("");
    expect(problems("{date}_{start}")).toMatch(/unknown placeholder \{date\}/);
    expect(problems("reports/{start}")).toMatch(/not "\/"/);
    expect(problems("my report {start}")).toMatch(/not " "/);
    expect(problems("..{start}")).toMatch(/must not start with/);
    expect(problems("-{start}")).toMatch(/must not start with/);
    expect(problems("export")).toMatch(/each window's file has its own name/);
    expect(problems("{task}_{report}")).toMatch(/each window's file has its own name/);
    expect(problems("export_{startDate}", "interval")).toMatch(/interval task has several windows a day/);
    expect(problems("export_{startDate}_{startTime}", "interval")).toBe("");
    expect(problems("x".repeat(121) + "{start}")).toMatch(/1 to 120 characters/);
    expect(problems("")).toMatch(/1 to 120 characters/);
    expect(() => reportFileName({ ...base, pattern: "../{start}" })).toThrow(RangeError);
    // Four 80-character slugs and a date: over 255 bytes once expanded.
    expect(problems("{task}{task}{task}{task}{startDate}")).toMatch(/may expand to 330 characters/);
    expect(problems("{task}_{report}_{start}_{end}_{runId}")).toBe("");
  });

  it("knows only its own placeholders, not names every object inherits ({constructor}, {toString}…)", () => {
    for (const name of ["constructor", "toString", "valueOf", "hasOwnProperty", "isPrototypeOf"]) {
      expect(validateFileNamePattern(`daily_{start}_{${name}}`).join(" | "), name).toContain(`unknown placeholder {${name}}`);
      expect(() => reportFileName({ ...base, pattern: `daily_{start}_{${name}}` }), name).toThrow(RangeError);
    }
    // The length check still adds numbers: {valueOf} once made the sum a string and skipped it.
    expect(validateFileNamePattern("{task}{task}{task}{valueOf}{startDate}").join(" | ")).toMatch(/may expand to/);
    expect(fileNameShape({ description: "d", reportId: "r", format: "csv", options: { fileNamePattern: "a_{start}_{constructor}" } })).toBe("a_{instant}_{constructor}.csv.pgp");
  });

  it("gives the two windows of the hour a change back from daylight time repeats two names", () => {
    const hourly = (startIso: string) =>
      reportFileName({ ...base, zone: "Europe/Berlin", windowStart: new Date(startIso), windowEnd: new Date(Date.parse(startIso) + 3_600_000), pattern: "queue_{startDate}_{startTime}-{endTime}" });
    // 00:00Z and 01:00Z are both 02:00 in Berlin on 25 October 2026 (+02:00, then +01:00).
    const names = ["2026-10-24T23:00:00Z", "2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z"].map(hourly);
    expect(names).toEqual([
      "queue_2026-10-25_0100-0200+0200.csv.pgp",
      "queue_2026-10-25_0200+0200-0200+0100.csv.pgp",
      "queue_2026-10-25_0200+0100-0300.csv.pgp",
      "queue_2026-10-25_0300-0400.csv.pgp",
    ]);
    expect(new Set(names).size).toBe(names.length);
    // Any other day keeps the short form.
    expect(hourly("2026-11-22T09:00:00Z")).toBe("queue_2026-11-22_1000-1100.csv.pgp");
  });

  it("reads the pattern from a task's options", () => {
    expect(fileNamePatternOf({ fileNamePattern: "a_{start}" })).toBe("a_{start}");
    expect(fileNamePatternOf({})).toBeUndefined();
    expect(fileNamePatternOf(null)).toBeUndefined();
    expect(fileNamePatternOf({ fileNamePattern: 3 })).toBeUndefined();
  });
});

describe("name variants (another window of the task has the plain name)", () => {
  const base = { description: "Daily messaging", format: "csv", reportId: "messaging-conversations", encrypted: false };
  // The first window after a switch from UTC to Los Angeles starts at the old zone's boundary.
  const odd = { ...base, windowStart: new Date("2026-01-02T00:00:00Z"), windowEnd: new Date("2026-01-02T08:00:00Z"), zone: "America/Los_Angeles" };

  it("keeps the plain name as variant 0 and adds the window's start, then its end, then a number", () => {
    expect(reportFileName({ ...odd, pattern: "daily_{endDate}" })).toBe("daily_2026-01-02.csv");
    expect(reportFileName({ ...odd, pattern: "daily_{endDate}", variant: 0 })).toBe("daily_2026-01-02.csv");
    expect(reportFileName({ ...odd, pattern: "daily_{endDate}", variant: 1 })).toBe("daily_2026-01-02_2026-01-01T1600-0800.csv");
    expect(reportFileName({ ...odd, pattern: "daily_{endDate}", variant: 2, encrypted: true })).toBe("daily_2026-01-02_2026-01-01T1600-0800_2026-01-02T0000-0800.csv.pgp");
    expect(reportFileName({ ...odd, pattern: "daily_{endDate}", variant: 3 })).toBe("daily_2026-01-02_2026-01-01T1600-0800_2026-01-02T0000-0800-2.csv");
    expect(reportFileName({ ...odd, variant: 1 })).toBe("daily-messaging_2026-01-01T1600-0800_2026-01-02T0000-0800_2026-01-01T1600-0800.csv");
    expect(distinctNameTag(odd.windowStart, odd.windowEnd, "UTC", 1)).toBe("_2026-01-02T0000+0000");
    expect(() => distinctNameTag(odd.windowStart, odd.windowEnd, "UTC", 0)).toThrow(RangeError);
    expect(() => reportFileName({ ...odd, variant: 1.5 })).toThrow(RangeError);
  });

  it("stays within 255 bytes and safe everywhere for the longest patterns", () => {
    // Expands to 214 characters: with a tag, its end gives way (the extensions keep their room).
    const longest = "{task}-{task}_{start}_{end}_{startDate}";
    expect(validateFileNamePattern(longest)).toEqual([]);
    const input = { ...odd, encrypted: true, format: "ndjson", description: "x".repeat(200), pattern: longest, runId: "0b7c6f4e-1d2a-4c3b-9e8f-112233445566" };
    const names = [0, 1, 2, 3, 12].map((variant) => reportFileName({ ...input, variant }));
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) {
      expect(Buffer.byteLength(name.replace(/\.pgp$/, ".asc"))).toBeLessThanOrEqual(255);
      expect(name).not.toMatch(UNSAFE);
      expect(() => assertValidKey(name)).not.toThrow();
    }
    expect(names[0]!.length).toBe(214 + ".ndjson.pgp".length);
    expect(names[4]!.endsWith("_2026-01-01T1600-0800_2026-01-02T0000-0800-11.ndjson.pgp")).toBe(true);
    expect(names[4]!.length).toBe(255);
  });
});
