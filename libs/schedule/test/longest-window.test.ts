import { DateTime } from "luxon";
import { describe, expect, it } from "vitest";
import { longestWindowMinutes, offsetChangesBetween, windowsBetween, type Schedule } from "../src/index.js";

const iso = (t: number) => new Date(t).toISOString();
const minutes = (ms: number) => ms / 60_000;

describe("offsetChangesBetween", () => {
  it("finds each change to the second, with the offsets either side", () => {
    const in2026 = (zone: string) =>
      offsetChangesBetween(zone, Date.UTC(2026, 0, 1), Date.UTC(2027, 0, 1)).map((c) => [iso(c.at), minutes(c.before), minutes(c.after)]);
    expect(in2026("America/New_York")).toEqual([["2026-03-08T07:00:00.000Z", -300, -240], ["2026-11-01T06:00:00.000Z", -240, -300]]);
    expect(in2026("Australia/Lord_Howe")).toEqual([["2026-04-04T15:00:00.000Z", 660, 630], ["2026-10-03T15:30:00.000Z", 630, 660]]);
    expect(in2026("Antarctica/Troll")).toEqual([["2026-03-29T01:00:00.000Z", 0, 120], ["2026-10-25T01:00:00.000Z", 120, 0]]);
    expect(in2026("UTC")).toEqual([]);
    expect(in2026("Asia/Tokyo")).toEqual([]);
  });

  it("agrees with luxon over several years, from and to mid-year", () => {
    for (const zone of ["Europe/London", "Europe/Dublin", "America/Santiago", "Pacific/Chatham", "Africa/Casablanca"]) {
      const from = Date.UTC(2025, 5, 15);
      const to = Date.UTC(2030, 2, 1);
      const offset = (t: number) => DateTime.fromMillis(t, { zone }).offset;
      for (const change of offsetChangesBetween(zone, from, to)) {
        expect(change.at).toBeGreaterThanOrEqual(from);
        expect(change.at).toBeLessThan(to);
        expect([offset(change.at - 1000), offset(change.at)], `${zone} ${iso(change.at)}`).toEqual([minutes(change.before), minutes(change.after)]);
      }
      // None missed: each day whose offset differs from the day before's holds one change found.
      const day = 86_400_000;
      const changedDays: number[] = [];
      for (let d = from + day; d < to; d += day) if (offset(d - day) !== offset(d)) changedDays.push(d);
      expect(changedDays.length, zone).toBeGreaterThan(0);
      expect(offsetChangesBetween(zone, from, to).map((c) => Math.ceil(c.at / day) * day), zone).toEqual(changedDays);
    }
  });
});

describe("longestWindowMinutes", () => {
  const from = new Date("2026-01-01T00:00:00Z");
  const to = new Date("2028-01-01T00:00:00Z");

  it("is the nominal length plus the zone's largest fall-back", () => {
    const every720: Schedule = { frequency: "interval", everyMinutes: 720, delayMinutes: 700 };
    const cases: Array<[string, number]> = [["UTC", 720], ["Asia/Tokyo", 720], ["America/New_York", 780], ["Europe/London", 780], ["Australia/Lord_Howe", 750], ["Antarctica/Troll", 840]];
    for (const [zone, longest] of cases) expect(longestWindowMinutes(every720, zone, from, to), zone).toBe(longest);
    // The window of New York's fall-back in 2026, which the Messaging Operations connector cannot fetch.
    expect(windowsBetween(every720, "America/New_York", new Date("2026-11-01T12:00:00Z"), new Date("2026-11-01T17:00:00Z")).map((w) => [iso(w.start.getTime()), iso(w.end.getTime())])).toEqual([
      ["2026-11-01T04:00:00.000Z", "2026-11-01T17:00:00.000Z"],
    ]);
    // Only the changes in [from, to) count: none in a summer.
    expect(longestWindowMinutes(every720, "America/New_York", new Date("2026-05-01T00:00:00Z"), new Date("2026-09-01T00:00:00Z"))).toBe(720);
  });

  it("is the longest of the windows themselves, for every kind of schedule", () => {
    const schedules: Schedule[] = [
      { frequency: "interval", everyMinutes: 15 },
      { frequency: "interval", everyMinutes: 90 },
      { frequency: "interval", everyMinutes: 720 },
      { frequency: "daily", time: "01:30" },
      { frequency: "weekly", time: "02:00", dayOfWeek: 7 },
    ];
    for (const zone of ["UTC", "America/New_York", "Europe/Dublin", "Australia/Lord_Howe", "Antarctica/Troll", "America/Santiago", "Asia/Kathmandu"]) {
      for (const s of schedules) {
        const windows = windowsBetween(s, zone, from, to).slice(1, -1);
        const longest = Math.max(...windows.map((w) => minutes(w.end.getTime() - w.start.getTime())));
        expect(longestWindowMinutes(s, zone, from, to), `${zone} ${JSON.stringify(s)}`).toBe(longest);
      }
    }
  });
});
