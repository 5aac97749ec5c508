import fc from "fast-check";
import { DateTime } from "luxon";
import { describe, expect, it } from "vitest";
import { latestCompleteWindow, nextWindow, validateSchedule, windowsBetween, type Schedule } from "../src/index.js";

// Local wall times are checked with luxon, independently of the Intl code under test.

const ZONES = [
  "UTC",
  "America/New_York",
  "Europe/London",
  "Europe/Dublin", // negative DST in the tz database
  "Australia/Lord_Howe", // 30-minute DST
  "America/Santiago", // DST at midnight
  "Asia/Kathmandu", // +05:45
  "Pacific/Chatham", // +12:45 / +13:45
] as const;

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Transition instants of each zone in 2024–2027, to aim random ranges at DST changes. */
const transitions = new Map<string, number[]>();
for (const zone of ZONES) {
  const found: number[] = [];
  const offset = (t: number) => DateTime.fromMillis(t, { zone }).offset;
  // Daily samples, then a binary search to the minute inside each day whose offset changed.
  for (let day = Date.UTC(2024, 0, 1); day < Date.UTC(2028, 0, 1); day += DAY) {
    if (offset(day) === offset(day + DAY)) continue;
    let lo = day;
    let hi = day + DAY;
    while (hi - lo > MINUTE) {
      const mid = lo + Math.floor((hi - lo) / 2 / MINUTE) * MINUTE;
      if (offset(mid) === offset(lo)) lo = mid;
      else hi = mid;
    }
    found.push(hi);
  }
  transitions.set(zone, found);
}

const DIVISORS = [15, 16, 18, 20, 24, 30, 32, 36, 40, 45, 48, 60, 72, 80, 90, 96, 120, 144, 160, 180, 240, 288, 360, 480, 720, 1440];

const time = fc.tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 })).map(([h, m]) => `${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}`);
const delay = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 1440 }));
const schedule: fc.Arbitrary<Schedule> = fc.oneof(
  fc.record({ frequency: fc.constant("daily" as const), time, delayMinutes: delay }),
  fc.record({ frequency: fc.constant("weekly" as const), time, dayOfWeek: fc.integer({ min: 1, max: 7 }), delayMinutes: delay }),
  fc.record({ frequency: fc.constant("interval" as const), everyMinutes: fc.constantFrom(...DIVISORS), delayMinutes: delay }),
);
// Wall times near a transition matter most: half-hour grids and times of day near 00:00–03:00.
const nearTransition = fc.oneof(
  fc.record({ frequency: fc.constant("daily" as const), time: fc.constantFrom("00:00", "00:30", "01:00", "01:30", "01:45", "02:00", "02:15", "02:30", "03:00", "23:30"), delayMinutes: delay }),
  fc.record({ frequency: fc.constant("interval" as const), everyMinutes: fc.constantFrom(15, 30, 45, 60, 90, 120), delayMinutes: delay }),
);

const zone = fc.constantFrom(...ZONES);

/** A start instant: anywhere in 2000–2040, or within three days of a DST transition. */
function instant(z: string): fc.Arbitrary<number> {
  const list = transitions.get(z) ?? [];
  const anywhere = fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2040, 0, 1) });
  if (list.length === 0) return anywhere;
  const near = fc.tuple(fc.constantFrom(...list), fc.integer({ min: -3 * DAY, max: 3 * DAY })).map(([t, d]) => t + d);
  return fc.oneof(anywhere, near, near);
}

/** A case: schedule, zone and a range (a, c] split at b, sized to hold tens of windows. */
const scenario = fc
  .tuple(fc.oneof(schedule, nearTransition), zone)
  .chain(([s, z]) => {
    const nominal = (s.frequency === "daily" ? 1440 : s.frequency === "weekly" ? 10080 : s.everyMinutes!) * MINUTE;
    const span = Math.min(40 * nominal, 4 * DAY + nominal);
    return fc
      .tuple(instant(z), fc.integer({ min: 0, max: span }), fc.double({ min: 0, max: 1, noNaN: true }))
      .map(([a, length, split]) => ({ s, z, a, c: a + length, b: a + Math.floor(length * split) }));
  });

function wall(z: string, t: number): number {
  const dt = DateTime.fromMillis(t, { zone: z });
  return t + dt.offset * MINUTE;
}

/** Lattice index of the local wall times the schedule names: base + i·step (local ms). */
function lattice(s: Schedule): { base: number; step: number } {
  if (s.frequency === "interval") return { base: 0, step: s.everyMinutes! * MINUTE };
  const [h, m] = s.time!.split(":").map(Number) as [number, number];
  const timeOfDay = (h * 60 + m) * MINUTE;
  if (s.frequency === "daily") return { base: timeOfDay, step: DAY };
  return { base: (((s.dayOfWeek! - 4 + 7) % 7) * DAY) + timeOfDay, step: 7 * DAY }; // 1970-01-01 was a Thursday
}

const RUNS = Number(process.env.SCHEDULE_PROPERTY_RUNS ?? 300);

describe("schedule properties", () => {
  it("generated schedules are valid", () => {
    fc.assert(
      fc.property(fc.oneof(schedule, nearTransition), zone, (s, z) => {
        expect(validateSchedule(s, z)).toEqual([]);
      }),
      { numRuns: 200 },
    );
  });

  it("windows are ordered, contiguous, non-empty and run at end + delay", () => {
    fc.assert(
      fc.property(scenario, ({ s, z, a, c }) => {
        const windows = windowsBetween(s, z, new Date(a), new Date(c));
        const d = (s.delayMinutes ?? 0) * MINUTE;
        for (const [i, w] of windows.entries()) {
          expect(w.start.getTime()).toBeLessThan(w.end.getTime());
          expect(w.runAt.getTime()).toBe(w.end.getTime() + d);
          expect(w.end.getTime()).toBeGreaterThan(a);
          expect(w.end.getTime()).toBeLessThanOrEqual(c);
          if (i > 0) expect(w.start.getTime()).toBe(windows[i - 1]!.end.getTime());
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("covers every window ending in (from, to] and agrees with nextWindow and latestCompleteWindow", () => {
    fc.assert(
      fc.property(scenario, ({ s, z, a, c }) => {
        const windows = windowsBetween(s, z, new Date(a), new Date(c));
        const first = nextWindow(s, z, new Date(a));
        const after = nextWindow(s, z, new Date(c));
        const latest = latestCompleteWindow(s, z, new Date(c));
        expect(first.start.getTime()).toBeLessThanOrEqual(a);
        expect(first.end.getTime()).toBeGreaterThan(a);
        expect(after.end.getTime()).toBeGreaterThan(c);
        expect(after.start.getTime()).toBeLessThanOrEqual(c);
        expect(latest.end.getTime()).toBe(after.start.getTime());
        expect(latest.start.getTime()).toBeLessThan(latest.end.getTime());
        if (windows.length > 0) {
          expect(windows[0]).toEqual(first);
          expect(windows.at(-1)!.end.getTime()).toBe(after.start.getTime());
          expect(windows.at(-1)).toEqual(latest);
        } else {
          expect(first.end.getTime()).toBeGreaterThan(c);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("(a, c] is (a, b] followed by (b, c]", () => {
    fc.assert(
      fc.property(scenario, ({ s, z, a, b, c }) => {
        const whole = windowsBetween(s, z, new Date(a), new Date(c));
        const parts = [...windowsBetween(s, z, new Date(a), new Date(b)), ...windowsBetween(s, z, new Date(b), new Date(c))];
        expect(parts).toEqual(whole);
      }),
      { numRuns: RUNS },
    );
  });

  it("every end is the first instant at or past a named local time, and none is left out", () => {
    fc.assert(
      fc.property(scenario, ({ s, z, a, c }) => {
        const { base, step } = lattice(s);
        const windows = windowsBetween(s, z, new Date(a), new Date(c));
        let previousHigh: number | undefined;
        for (const w of windows) {
          const e = w.end.getTime();
          const at = wall(z, e);
          const justBefore = wall(z, e - 1000);
          // The named wall times this end stands for: those in (wall(e − 1 s), wall(e)]. Normally
          // exactly wall(e); at a forward jump, the skipped times and the time jumped to.
          const low = Math.floor((justBefore - base) / step) + 1;
          const high = Math.floor((at - base) / step);
          expect(high, `end ${w.end.toISOString()} (${DateTime.fromMillis(e, { zone: z }).toISO()}) is not a named local time`).toBeGreaterThanOrEqual(low);
          if (at - justBefore === 1000) expect(at).toBe(base + high * step);
          // No earlier instant reached that wall time: it is the first occurrence, not a repeat.
          const named = base + low * step;
          for (const back of [30 * MINUTE, HOUR, 90 * MINUTE, 2 * HOUR, 3 * HOUR, DAY]) {
            const offset = DateTime.fromMillis(e - back, { zone: z }).offset * MINUTE;
            const earlier = named - offset;
            if (earlier < e && DateTime.fromMillis(earlier, { zone: z }).offset * MINUTE === offset) {
              throw new Error(`${DateTime.fromMillis(e, { zone: z }).toISO()} repeats a wall time first reached at ${new Date(earlier).toISOString()}`);
            }
          }
          // Consecutive ends account for consecutive named times: none is skipped.
          if (previousHigh !== undefined) expect(low).toBe(previousHigh + 1);
          previousHigh = high;
        }
      }),
      { numRuns: RUNS },
    );
  });

  it("weekly ends fall on the named weekday, daily ends on consecutive local dates", () => {
    fc.assert(
      fc.property(scenario, ({ s, z, a, c }) => {
        const ends = windowsBetween(s, z, new Date(a), new Date(c)).map((w) => DateTime.fromJSDate(w.end, { zone: z }));
        for (const [i, end] of ends.entries()) {
          const named = DateTime.fromObject({ year: end.year, month: end.month, day: end.day }, { zone: "UTC" });
          if (s.frequency === "weekly" && end.toFormat("HH:mm") === s.time) expect(end.weekday).toBe(s.dayOfWeek);
          if (s.frequency === "daily" && i > 0) {
            const previous = ends[i - 1]!;
            const days = named.diff(DateTime.fromObject({ year: previous.year, month: previous.month, day: previous.day }, { zone: "UTC" }), "days").days;
            expect(days).toBe(1);
          }
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe("validateSchedule", () => {
  it("explains each problem", () => {
    expect(validateSchedule({ frequency: "daily" })).toEqual([`time is required for a daily schedule ("HH:MM", 00:00–23:59)`]);
    expect(validateSchedule({ frequency: "daily", time: "24:00" })).toEqual([`time must be "HH:MM" between 00:00 and 23:59`]);
    expect(validateSchedule({ frequency: "daily", time: "7:00" })).toHaveLength(1);
    expect(validateSchedule({ frequency: "weekly", time: "07:00", dayOfWeek: 0 })).toEqual(["dayOfWeek must be a whole number from 1 (Monday) to 7 (Sunday)"]);
    expect(validateSchedule({ frequency: "weekly", time: "07:00" })).toHaveLength(1);
    expect(validateSchedule({ frequency: "interval", everyMinutes: 10 })).toEqual(["everyMinutes must be a whole number from 15 to 1440"]);
    expect(validateSchedule({ frequency: "interval", everyMinutes: 50 })[0]).toMatch(/divide a day/);
    expect(validateSchedule({ frequency: "interval", everyMinutes: 2880 })).toHaveLength(1);
    expect(validateSchedule({ frequency: "interval", everyMinutes: 60, delayMinutes: 1441 })).toEqual(["delayMinutes must be a whole number from 0 to 1440"]);
    expect(validateSchedule({ frequency: "interval", everyMinutes: 60, delayMinutes: -1 })).toHaveLength(1);
    expect(validateSchedule({ frequency: "hourly" as "daily", time: "01:00" })[0]).toMatch(/frequency/);
    expect(validateSchedule({ frequency: "daily", time: "06:00", delayMinutes: 1440 }, "Asia/Kathmandu")).toEqual([]);
    expect(validateSchedule({ frequency: "daily", time: "06:00" }, "Europe/Atlantis")).toEqual([`time zone "Europe/Atlantis" is not a known IANA time zone`]);
    expect(validateSchedule({ frequency: "daily", time: "06:00" }, "+01:00")).toHaveLength(1);
  });
});
