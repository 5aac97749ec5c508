import { describe, expect, it } from "vitest";
import { dateSubfolder, formatWindowInstant, MAX_SLUG_LENGTH, reportFileName, slugify } from "../src/index.js";
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
