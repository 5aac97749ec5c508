import { describe, expect, it } from "vitest";
import { catchUpWindowsFor, computeNextRunAt, planDueWindows, resumeAfterChange, resumeAfterEnable, sameSchedule, windowLengthMinutesNominal, type Schedule } from "../src/index.js";

const iso = (d: Date) => d.toISOString();

describe("planDueWindows", () => {
  const daily: Schedule = { frequency: "daily", time: "06:00" };

  it("owes every window whose runAt passed since nextRunAt, oldest first", () => {
    const plan = planDueWindows(daily, "UTC", new Date("2026-11-20T06:00:00Z"), new Date("2026-11-23T07:00:00Z"), 7);
    expect(plan.run.map((w) => iso(w.end))).toEqual([
      "2026-11-20T06:00:00.000Z",
      "2026-11-21T06:00:00.000Z",
      "2026-11-22T06:00:00.000Z",
      "2026-11-23T06:00:00.000Z",
    ]);
    expect(plan.skip).toEqual([]);
    expect(plan.skippedSpan).toBeNull();
    expect(iso(plan.nextRunAt)).toBe("2026-11-24T06:00:00.000Z");
  });

  it("runs only the newest windows beyond the limit and skips the older ones", () => {
    const plan = planDueWindows(daily, "UTC", new Date("2026-11-20T06:00:00Z"), new Date("2026-11-23T07:00:00Z"), 2);
    expect(plan.run.map((w) => iso(w.end))).toEqual(["2026-11-22T06:00:00.000Z", "2026-11-23T06:00:00.000Z"]);
    expect(plan.skip.map((w) => iso(w.end))).toEqual(["2026-11-20T06:00:00.000Z", "2026-11-21T06:00:00.000Z"]);
  });

  it("counts windows by their runAt when there is a delay", () => {
    const s: Schedule = { frequency: "daily", time: "00:00", delayMinutes: 360 };
    const plan = planDueWindows(s, "Europe/London", new Date("2026-11-23T06:00:00Z"), new Date("2026-11-23T06:00:00Z"), 7);
    expect(plan.run.map((w) => [iso(w.start), iso(w.end), iso(w.runAt)])).toEqual([
      ["2026-11-22T00:00:00.000Z", "2026-11-23T00:00:00.000Z", "2026-11-23T06:00:00.000Z"],
    ]);
    expect(iso(plan.nextRunAt)).toBe("2026-11-24T06:00:00.000Z");
  });

  it("owes nothing before nextRunAt", () => {
    const plan = planDueWindows(daily, "UTC", new Date("2026-11-24T06:00:00Z"), new Date("2026-11-23T07:00:00Z"), 7);
    expect(plan.run).toEqual([]);
    expect(iso(plan.nextRunAt)).toBe("2026-11-24T06:00:00.000Z");
  });

  it("after a long outage lists a bounded number of windows and spans the rest, leaving no gap", () => {
    const s: Schedule = { frequency: "interval", everyMinutes: 15 };
    const limit = catchUpWindowsFor(s, 1);
    expect(limit).toBe(96);
    const plan = planDueWindows(s, "America/New_York", new Date("2026-01-01T00:15:00Z"), new Date("2026-12-01T00:05:00Z"), limit);
    expect(plan.run).toHaveLength(96);
    expect(plan.skip.length).toBeGreaterThan(0);
    expect(plan.skip.length).toBeLessThanOrEqual(2 * limit + 10);
    expect(plan.skippedSpan).not.toBeNull();
    expect(iso(plan.skippedSpan!.start)).toBe("2026-01-01T00:00:00.000Z");
    const pieces = [plan.skippedSpan!, ...plan.skip, ...plan.run];
    for (let i = 1; i < pieces.length; i++) expect(pieces[i]!.start.getTime()).toBe(pieces[i - 1]!.end.getTime());
    expect(iso(plan.run.at(-1)!.end)).toBe("2026-12-01T00:00:00.000Z");
    expect(iso(plan.nextRunAt)).toBe("2026-12-01T00:15:00.000Z");
  });
});

describe("catchUpWindowsFor and computeNextRunAt", () => {
  it("turns days into windows", () => {
    expect(catchUpWindowsFor({ frequency: "daily", time: "01:00" }, 7)).toBe(7);
    expect(catchUpWindowsFor({ frequency: "weekly", time: "01:00", dayOfWeek: 3 }, 7)).toBe(1);
    expect(catchUpWindowsFor({ frequency: "weekly", time: "01:00", dayOfWeek: 3 }, 1)).toBe(1);
    expect(catchUpWindowsFor({ frequency: "interval", everyMinutes: 60 }, 7)).toBe(168);
  });

  it("next run is the first window whose run is still ahead, counting the delay", () => {
    const s: Schedule = { frequency: "daily", time: "00:00", delayMinutes: 360 };
    expect(iso(computeNextRunAt(s, "UTC", new Date("2026-11-23T03:00:00Z")))).toBe("2026-11-23T06:00:00.000Z");
    expect(iso(computeNextRunAt(s, "UTC", new Date("2026-11-23T06:00:00Z")))).toBe("2026-11-24T06:00:00.000Z");
    expect(iso(computeNextRunAt(s, "Asia/Kathmandu", new Date("2026-11-23T03:00:00Z")))).toBe("2026-11-24T00:15:00.000Z");
  });
});

describe("planDueWindows properties", () => {
  it("owes exactly the windows with runAt in [nextRunAt, now]: the newest up to the limit run, the rest skipped, no gap", async () => {
    const fc = (await import("fast-check")).default;
    const zones = ["UTC", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "Pacific/Chatham"];
    const schedule = fc.oneof(
      fc.record({ frequency: fc.constant("daily" as const), time: fc.constantFrom("00:00", "01:30", "02:30", "23:45"), delayMinutes: fc.integer({ min: 0, max: 1440 }) }),
      fc.record({ frequency: fc.constant("weekly" as const), time: fc.constantFrom("00:00", "02:30"), dayOfWeek: fc.integer({ min: 1, max: 7 }), delayMinutes: fc.integer({ min: 0, max: 1440 }) }),
      fc.record({ frequency: fc.constant("interval" as const), everyMinutes: fc.constantFrom(15, 30, 60, 180, 1440), delayMinutes: fc.integer({ min: 0, max: 120 }) }),
    );
    fc.assert(
      fc.property(
        schedule,
        fc.constantFrom(...zones),
        fc.integer({ min: Date.UTC(2024, 0, 1), max: Date.UTC(2027, 0, 1) }),
        fc.integer({ min: 0, max: 40 * 86_400_000 }),
        fc.integer({ min: 1, max: 30 }),
        (s, zone, created, downFor, limit) => {
          const nextRunAt = computeNextRunAt(s, zone, new Date(created));
          const now = new Date(nextRunAt.getTime() + downFor);
          const plan = planDueWindows(s, zone, nextRunAt, now, limit);
          expect(plan.run.length).toBeGreaterThan(0);
          expect(plan.run.length).toBeLessThanOrEqual(limit);
          expect(plan.skip.length).toBeLessThanOrEqual(2 * limit + 2 + Math.ceil(120 / windowLengthMinutesNominal(s)));
          if (plan.skip.length + (plan.skippedSpan ? 1 : 0) > 0) expect(plan.run.length).toBe(limit);
          const pieces = [...(plan.skippedSpan ? [plan.skippedSpan] : []), ...plan.skip, ...plan.run];
          for (let i = 1; i < pieces.length; i++) expect(pieces[i]!.start.getTime()).toBe(pieces[i - 1]!.end.getTime());
          // Nothing before nextRunAt is owed: the first owed window is the one due at nextRunAt.
          const first = plan.skip[0] ?? plan.run[0]!;
          if (!plan.skippedSpan) expect(first.runAt.getTime()).toBe(nextRunAt.getTime());
          for (const w of plan.run) expect(w.runAt.getTime()).toBeLessThanOrEqual(now.getTime());
          expect(plan.nextRunAt.getTime()).toBeGreaterThan(now.getTime());
          expect(plan.nextRunAt.getTime() - (s.delayMinutes ?? 0) * 60_000).toBeGreaterThan(plan.run.at(-1)!.end.getTime());
          // The next window starts where the last run ends: nothing between them is lost.
          expect(computeNextRunAt(s, zone, now).getTime()).toBe(plan.nextRunAt.getTime());
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("continuing from coveredUntil", () => {
  const hourly: Schedule = { frequency: "interval", everyMinutes: 60 };
  const spans = (plan: ReturnType<typeof planDueWindows>) =>
    [...(plan.skippedSpan ? [plan.skippedSpan] : []), ...plan.skip, ...plan.run].map((w) => [iso(w.start), iso(w.end)]);

  it("starts the first window at coveredUntil: an overlap is removed, a gap is filled", () => {
    const overlap = planDueWindows(hourly, "UTC", new Date("2026-11-23T11:00:00Z"), new Date("2026-11-23T12:01:00Z"), 7, new Date("2026-11-23T10:15:00Z"));
    expect(spans(overlap)).toEqual([
      ["2026-11-23T10:15:00.000Z", "2026-11-23T11:00:00.000Z"],
      ["2026-11-23T11:00:00.000Z", "2026-11-23T12:00:00.000Z"],
    ]);
    const gap = planDueWindows(hourly, "UTC", new Date("2026-11-23T11:00:00Z"), new Date("2026-11-23T11:01:00Z"), 7, new Date("2026-11-23T09:30:00Z"));
    expect(spans(gap)).toEqual([["2026-11-23T09:30:00.000Z", "2026-11-23T11:00:00.000Z"]]);
    expect(iso(gap.nextRunAt)).toBe("2026-11-23T12:00:00.000Z");
  });

  it("records nothing for a window that ends at or before coveredUntil", () => {
    const plan = planDueWindows(hourly, "UTC", new Date("2026-11-23T11:00:00Z"), new Date("2026-11-23T11:01:00Z"), 7, new Date("2026-11-23T11:00:00Z"));
    expect(plan.run).toEqual([]);
    expect(iso(plan.nextRunAt)).toBe("2026-11-23T12:00:00.000Z");
  });

  it("beyond the catch-up limit the skipped span starts at coveredUntil", () => {
    const daily: Schedule = { frequency: "daily", time: "08:00" };
    const plan = planDueWindows(daily, "UTC", new Date("2026-11-01T08:00:00Z"), new Date("2026-11-23T09:00:00Z"), 2, new Date("2026-11-01T06:00:00Z"));
    const pieces = spans(plan);
    expect(pieces[0]![0]).toBe("2026-11-01T06:00:00.000Z");
    for (let i = 1; i < pieces.length; i++) expect(pieces[i]![0]).toBe(pieces[i - 1]![1]);
    expect(plan.run.map((w) => iso(w.end))).toEqual(["2026-11-22T08:00:00.000Z", "2026-11-23T08:00:00.000Z"]);
  });

  it("compares schedules in normalised form", () => {
    expect(sameSchedule({ frequency: "daily", time: "06:00" }, { frequency: "daily", time: "06:00", dayOfWeek: null, everyMinutes: null, delayMinutes: 0 })).toBe(true);
    expect(sameSchedule({ frequency: "interval", everyMinutes: 60, time: "06:00" }, { frequency: "interval", everyMinutes: 60 })).toBe(true);
    expect(sameSchedule({ frequency: "daily", time: "06:00" }, { frequency: "daily", time: "06:00", delayMinutes: 1 })).toBe(false);
    expect(sameSchedule({ frequency: "weekly", time: "06:00", dayOfWeek: 1 }, { frequency: "weekly", time: "06:00", dayOfWeek: 2 })).toBe(false);
  });

  it("after a change, resumes at the first new window that ends after coveredUntil, even when already due", () => {
    const daily6h: Schedule = { frequency: "daily", time: "00:00", delayMinutes: 360 };
    const noDelay: Schedule = { frequency: "daily", time: "00:00" };
    const now = new Date("2026-11-23T03:00:00Z");
    const before = { schedule: daily6h, timeZone: "UTC", nextRunAt: new Date("2026-11-23T06:00:00Z"), coveredUntil: new Date("2026-11-22T00:00:00Z") };
    expect(resumeAfterChange(before, { schedule: noDelay, timeZone: "UTC" }, now)).toEqual({ nextRunAt: new Date("2026-11-23T00:00:00Z"), coveredUntil: new Date("2026-11-22T00:00:00Z") });
    // Nothing recorded and nothing due yet: from now, like a new task.
    expect(resumeAfterChange({ ...before, coveredUntil: null }, { schedule: noDelay, timeZone: "UTC" }, now)).toEqual({ nextRunAt: new Date("2026-11-24T00:00:00Z"), coveredUntil: null });
    // Nothing recorded but the first window is overdue: it is still owed from its start.
    expect(resumeAfterChange({ ...before, coveredUntil: null, nextRunAt: new Date("2026-11-22T06:00:00Z") }, { schedule: noDelay, timeZone: "UTC" }, now)).toEqual({
      nextRunAt: new Date("2026-11-22T00:00:00Z"),
      coveredUntil: new Date("2026-11-21T00:00:00Z"),
    });
  });
});

describe("resumeAfterEnable", () => {
  const daily: Schedule = { frequency: "daily", time: "00:00", delayMinutes: 0 };
  const now = new Date("2026-11-23T10:00:00Z");

  it("starts with the plain window due next, as a new task, when nothing was recorded", () => {
    expect(resumeAfterEnable(daily, "UTC", null, now)).toEqual({ nextRunAt: new Date("2026-11-24T00:00:00Z"), coveredUntil: null });
  });

  it("does not cover a disabled period: older coverage moves up to the plain window's start", () => {
    expect(resumeAfterEnable(daily, "UTC", new Date("2026-11-20T00:00:00Z"), now)).toEqual({ nextRunAt: new Date("2026-11-24T00:00:00Z"), coveredUntil: new Date("2026-11-23T00:00:00Z") });
  });

  it("never reaches back over recorded windows that end inside the plain window (a zone changed while disabled)", () => {
    // Recorded in London up to 23 Nov 00:00Z; the plain Los Angeles window is 22 Nov 08:00Z → 23 Nov 08:00Z.
    const la = resumeAfterEnable(daily, "America/Los_Angeles", new Date("2026-11-23T00:00:00Z"), new Date("2026-11-23T03:00:00Z"));
    expect(la).toEqual({ nextRunAt: new Date("2026-11-23T08:00:00Z"), coveredUntil: new Date("2026-11-23T00:00:00Z") });
    const plan = planDueWindows(daily, "America/Los_Angeles", la.nextRunAt, new Date("2026-11-23T08:01:00Z"), 3, la.coveredUntil);
    expect(plan.run.map((w) => [w.start.toISOString(), w.end.toISOString()])).toEqual([["2026-11-23T00:00:00.000Z", "2026-11-23T08:00:00.000Z"]]);
  });
});
