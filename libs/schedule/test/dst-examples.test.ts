import { describe, expect, it } from "vitest";
import { latestCompleteWindow, nextWindow, windowsBetween, type Schedule } from "../src/index.js";

// Expected instants are written out by hand from the zones' 2026 rules:
// New York: 2026-03-08 02:00 EST → 03:00 EDT (07:00Z); 2026-11-01 02:00 EDT → 01:00 EST (06:00Z).
// London: 2026-03-29 01:00 GMT → 02:00 BST (01:00Z); 2026-10-25 02:00 BST → 01:00 GMT (01:00Z).
// Lord Howe (+10:30 / +11): 2026-04-05 02:00 +11 → 01:30 +10:30 (15:00Z on the 4th);
//   2026-10-04 02:00 +10:30 → 02:30 +11 (15:30Z on the 3rd).

type Expected = [start: string, end: string, runAt?: string];

function between(s: Schedule, zone: string, from: string, to: string): Expected[] {
  return windowsBetween(s, zone, new Date(from), new Date(to)).map((w) => [
    w.start.toISOString(),
    w.end.toISOString(),
    ...(w.runAt.getTime() === w.end.getTime() ? [] : [w.runAt.toISOString()]),
  ] as Expected);
}

describe("America/New_York", () => {
  const zone = "America/New_York";

  it("daily at a time skipped by spring-forward runs when the clock jumps", () => {
    expect(between({ frequency: "daily", time: "02:30" }, zone, "2026-03-06T12:00:00Z", "2026-03-09T12:00:00Z")).toEqual([
      ["2026-03-06T07:30:00.000Z", "2026-03-07T07:30:00.000Z"],
      ["2026-03-07T07:30:00.000Z", "2026-03-08T07:00:00.000Z"], // 02:30 does not exist: 03:00 EDT
      ["2026-03-08T07:00:00.000Z", "2026-03-09T06:30:00.000Z"], // 02:30 EDT
    ]);
  });

  it("daily at a repeated fall-back time runs at its first occurrence, once", () => {
    expect(between({ frequency: "daily", time: "01:30" }, zone, "2026-10-31T00:00:00Z", "2026-11-02T12:00:00Z")).toEqual([
      ["2026-10-30T05:30:00.000Z", "2026-10-31T05:30:00.000Z"],
      ["2026-10-31T05:30:00.000Z", "2026-11-01T05:30:00.000Z"], // 01:30 EDT, not 01:30 EST
      ["2026-11-01T05:30:00.000Z", "2026-11-02T06:30:00.000Z"], // a 25-hour window
    ]);
  });

  it("daily at midnight with a 6 h delay covers the 23-hour local day", () => {
    expect(between({ frequency: "daily", time: "00:00", delayMinutes: 360 }, zone, "2026-03-07T12:00:00Z", "2026-03-09T12:00:00Z")).toEqual([
      ["2026-03-07T05:00:00.000Z", "2026-03-08T05:00:00.000Z", "2026-03-08T11:00:00.000Z"],
      ["2026-03-08T05:00:00.000Z", "2026-03-09T04:00:00.000Z", "2026-03-09T10:00:00.000Z"],
    ]);
  });

  it("hourly ticks collapse across the gap and stretch across the overlap", () => {
    expect(between({ frequency: "interval", everyMinutes: 60 }, zone, "2026-03-08T04:00:00Z", "2026-03-08T09:00:00Z")).toEqual([
      ["2026-03-08T04:00:00.000Z", "2026-03-08T05:00:00.000Z"],
      ["2026-03-08T05:00:00.000Z", "2026-03-08T06:00:00.000Z"],
      ["2026-03-08T06:00:00.000Z", "2026-03-08T07:00:00.000Z"], // 02:00 and 03:00 are the same instant
      ["2026-03-08T07:00:00.000Z", "2026-03-08T08:00:00.000Z"],
      ["2026-03-08T08:00:00.000Z", "2026-03-08T09:00:00.000Z"],
    ]);
    expect(between({ frequency: "interval", everyMinutes: 60 }, zone, "2026-11-01T03:00:00Z", "2026-11-01T08:00:00Z")).toEqual([
      ["2026-11-01T03:00:00.000Z", "2026-11-01T04:00:00.000Z"],
      ["2026-11-01T04:00:00.000Z", "2026-11-01T05:00:00.000Z"], // 01:00 EDT
      ["2026-11-01T05:00:00.000Z", "2026-11-01T07:00:00.000Z"], // to 02:00 EST: two hours
      ["2026-11-01T07:00:00.000Z", "2026-11-01T08:00:00.000Z"],
    ]);
  });

  it("weekly on the spring-forward Sunday", () => {
    expect(between({ frequency: "weekly", dayOfWeek: 7, time: "02:15" }, zone, "2026-03-02T00:00:00Z", "2026-03-16T00:00:00Z")).toEqual([
      ["2026-03-01T07:15:00.000Z", "2026-03-08T07:00:00.000Z"],
      ["2026-03-08T07:00:00.000Z", "2026-03-15T06:15:00.000Z"],
    ]);
  });
});

describe("Europe/London", () => {
  const zone = "Europe/London";

  it("daily at 01:30 on the spring-forward day runs at 02:00 BST", () => {
    expect(between({ frequency: "daily", time: "01:30" }, zone, "2026-03-28T00:00:00Z", "2026-03-30T12:00:00Z")).toEqual([
      ["2026-03-27T01:30:00.000Z", "2026-03-28T01:30:00.000Z"],
      ["2026-03-28T01:30:00.000Z", "2026-03-29T01:00:00.000Z"],
      ["2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"],
    ]);
  });

  it("half-hourly ticks on the fall-back day run 01:30 BST, then 02:00 GMT", () => {
    expect(between({ frequency: "interval", everyMinutes: 30 }, zone, "2026-10-24T23:00:00Z", "2026-10-25T02:30:00Z")).toEqual([
      ["2026-10-24T23:00:00.000Z", "2026-10-24T23:30:00.000Z"],
      ["2026-10-24T23:30:00.000Z", "2026-10-25T00:00:00.000Z"],
      ["2026-10-25T00:00:00.000Z", "2026-10-25T00:30:00.000Z"],
      ["2026-10-25T00:30:00.000Z", "2026-10-25T02:00:00.000Z"], // 90 minutes
      ["2026-10-25T02:00:00.000Z", "2026-10-25T02:30:00.000Z"],
    ]);
  });

  it("daily at 01:30 on the fall-back day runs once", () => {
    expect(between({ frequency: "daily", time: "01:30", delayMinutes: 15 }, zone, "2026-10-24T12:00:00Z", "2026-10-26T12:00:00Z")).toEqual([
      ["2026-10-24T00:30:00.000Z", "2026-10-25T00:30:00.000Z", "2026-10-25T00:45:00.000Z"],
      ["2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z", "2026-10-26T01:45:00.000Z"],
    ]);
  });
});

describe("Australia/Lord_Howe (30-minute DST)", () => {
  const zone = "Australia/Lord_Howe";

  it("daily at 02:15 on the spring-forward day runs at the 02:00 → 02:30 jump", () => {
    expect(between({ frequency: "daily", time: "02:15" }, zone, "2026-10-02T12:00:00Z", "2026-10-04T20:00:00Z")).toEqual([
      ["2026-10-01T15:45:00.000Z", "2026-10-02T15:45:00.000Z"],
      ["2026-10-02T15:45:00.000Z", "2026-10-03T15:30:00.000Z"], // 23 h 45 min
      ["2026-10-03T15:30:00.000Z", "2026-10-04T15:15:00.000Z"], // 02:15 +11
    ]);
  });

  it("half-hourly ticks collapse 02:00 into 02:30", () => {
    expect(between({ frequency: "interval", everyMinutes: 30 }, zone, "2026-10-03T14:00:00Z", "2026-10-03T16:00:00Z")).toEqual([
      ["2026-10-03T14:00:00.000Z", "2026-10-03T14:30:00.000Z"],
      ["2026-10-03T14:30:00.000Z", "2026-10-03T15:00:00.000Z"],
      ["2026-10-03T15:00:00.000Z", "2026-10-03T15:30:00.000Z"],
      ["2026-10-03T15:30:00.000Z", "2026-10-03T16:00:00.000Z"],
    ]);
  });

  it("on the fall-back day 01:45 runs at its first occurrence and ticks stretch by 30 minutes", () => {
    expect(between({ frequency: "daily", time: "01:45" }, zone, "2026-04-03T20:00:00Z", "2026-04-05T20:00:00Z")).toEqual([
      ["2026-04-03T14:45:00.000Z", "2026-04-04T14:45:00.000Z"], // 01:45 +11
      ["2026-04-04T14:45:00.000Z", "2026-04-05T15:15:00.000Z"], // 24 h 30 min
    ]);
    expect(between({ frequency: "interval", everyMinutes: 30 }, zone, "2026-04-04T13:30:00Z", "2026-04-04T16:00:00Z")).toEqual([
      ["2026-04-04T13:30:00.000Z", "2026-04-04T14:00:00.000Z"],
      ["2026-04-04T14:00:00.000Z", "2026-04-04T14:30:00.000Z"], // 01:30 +11
      ["2026-04-04T14:30:00.000Z", "2026-04-04T15:30:00.000Z"], // to 02:00 +10:30: an hour
      ["2026-04-04T15:30:00.000Z", "2026-04-04T16:00:00.000Z"],
    ]);
  });
});

describe("midnight DST (America/Santiago)", () => {
  it("daily at 00:00 on the spring-forward day runs at 01:00 -03", () => {
    expect(between({ frequency: "daily", time: "00:00" }, "America/Santiago", "2026-09-05T12:00:00Z", "2026-09-07T12:00:00Z")).toEqual([
      ["2026-09-05T04:00:00.000Z", "2026-09-06T04:00:00.000Z"],
      ["2026-09-06T04:00:00.000Z", "2026-09-07T03:00:00.000Z"],
    ]);
  });
});

describe("nextWindow and latestCompleteWindow", () => {
  const s: Schedule = { frequency: "daily", time: "00:00", delayMinutes: 360 };

  it("nextWindow is the first window ending after the instant", () => {
    const w = nextWindow(s, "Europe/London", new Date("2026-11-23T00:00:00Z"));
    expect([w.start.toISOString(), w.end.toISOString(), w.runAt.toISOString()]).toEqual([
      "2026-11-23T00:00:00.000Z",
      "2026-11-24T00:00:00.000Z",
      "2026-11-24T06:00:00.000Z",
    ]);
  });

  it("latestCompleteWindow is the last window ending at or before now", () => {
    const w = latestCompleteWindow(s, "Europe/London", new Date("2026-11-23T00:00:00Z"));
    expect([w.start.toISOString(), w.end.toISOString()]).toEqual(["2026-11-22T00:00:00.000Z", "2026-11-23T00:00:00.000Z"]);
    const collapsed = latestCompleteWindow({ frequency: "interval", everyMinutes: 30 }, "Australia/Lord_Howe", new Date("2026-10-03T15:40:00Z"));
    expect([collapsed.start.toISOString(), collapsed.end.toISOString()]).toEqual(["2026-10-03T15:00:00.000Z", "2026-10-03T15:30:00.000Z"]);
  });

  it("rejects unknown zones and invalid schedules", () => {
    expect(() => nextWindow(s, "Mars/Olympus_Mons", new Date())).toThrow(/time zone/);
    expect(() => nextWindow({ frequency: "interval", everyMinutes: 7 }, "UTC", new Date())).toThrow(/everyMinutes/);
  });
});
