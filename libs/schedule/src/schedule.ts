import { DAY_MS, MINUTE_MS, isValidTimeZone, offsetChangesBetween, resolveLocalTime, wallTimeAt } from "./time-zone.js";

/** When a task runs; local times are in the tenant's IANA time zone. */
export type Schedule = {
  frequency: "daily" | "weekly" | "interval";
  /** Local "HH:MM" (daily, weekly). */
  time?: string | null;
  /** 1 = Monday … 7 = Sunday (weekly). */
  dayOfWeek?: number | null;
  /** Interval length in minutes (interval): 15–1440, dividing 1440. */
  everyMinutes?: number | null;
  /** Minutes between the end of a window and its run (0–1440). */
  delayMinutes?: number | null;
};

/** A data window (start, end] and the instant its run is due. */
export type Window = { start: Date; end: Date; runAt: Date };

const TIME = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** Human-readable problems with a schedule (and its zone, when given); empty when valid. */
export function validateSchedule(s: Schedule, timeZone?: string | null): string[] {
  const problems: string[] = [];
  if (s === null || typeof s !== "object") return ["schedule must be an object"];
  const { frequency } = s;
  if (frequency !== "daily" && frequency !== "weekly" && frequency !== "interval") {
    problems.push(`frequency must be "daily", "weekly" or "interval"`);
  }
  if (frequency === "daily" || frequency === "weekly") {
    if (s.time === undefined || s.time === null) problems.push(`time is required for a ${frequency} schedule ("HH:MM", 00:00–23:59)`);
    else if (typeof s.time !== "string" || !TIME.test(s.time)) problems.push(`time must be "HH:MM" between 00:00 and 23:59`);
  }
  if (frequency === "weekly") {
    const d = s.dayOfWeek;
    if (d === undefined || d === null) problems.push("dayOfWeek is required for a weekly schedule (1 = Monday … 7 = Sunday)");
    else if (!Number.isInteger(d) || d < 1 || d > 7) problems.push("dayOfWeek must be a whole number from 1 (Monday) to 7 (Sunday)");
  }
  if (frequency === "interval") {
    const n = s.everyMinutes;
    if (n === undefined || n === null) problems.push("everyMinutes is required for an interval schedule");
    else if (!Number.isInteger(n) || n < 15 || n > 1440) problems.push("everyMinutes must be a whole number from 15 to 1440");
    else if (1440 % n !== 0) problems.push("everyMinutes must divide a day (1440 minutes) evenly, e.g. 15, 30, 60, 90, 120, 180, 240, 360, 720");
  }
  const delay = s.delayMinutes;
  if (delay !== undefined && delay !== null && (!Number.isInteger(delay) || delay < 0 || delay > 1440)) {
    problems.push("delayMinutes must be a whole number from 0 to 1440");
  }
  if (timeZone !== undefined && timeZone !== null && !isValidTimeZone(timeZone)) {
    problems.push(`time zone "${String(timeZone).slice(0, 64)}" is not a known IANA time zone`);
  }
  return problems;
}

/**
 * The wall-clock times at which windows end form a lattice in local time:
 * `base + i·step` local milliseconds for every integer i (daily: one per day at `time`;
 * weekly: one per week on `dayOfWeek` at `time`; interval: every N minutes from midnight).
 */
type Lattice = { base: number; step: number; delay: number };

const lattices = new Map<string, Lattice>();

function latticeOf(s: Schedule): Lattice {
  const key = `${s.frequency}|${s.time ?? ""}|${s.dayOfWeek ?? ""}|${s.everyMinutes ?? ""}|${s.delayMinutes ?? ""}`;
  let lattice = lattices.get(key);
  if (lattice) return lattice;
  const problems = validateSchedule(s);
  if (problems.length > 0) throw new RangeError(`invalid schedule: ${problems.join("; ")}`);
  const delay = (s.delayMinutes ?? 0) * MINUTE_MS;
  if (s.frequency === "interval") {
    lattice = { base: 0, step: (s.everyMinutes as number) * MINUTE_MS, delay };
  } else {
    const [, hh, mm] = TIME.exec(s.time as string) as RegExpExecArray;
    const timeOfDay = (Number(hh) * 60 + Number(mm)) * MINUTE_MS;
    if (s.frequency === "daily") {
      lattice = { base: timeOfDay, step: DAY_MS, delay };
    } else {
      // Local day 0 (1970-01-01) was a Thursday (ISO weekday 4).
      const firstDay = ((s.dayOfWeek as number) - 4 + 7) % 7;
      lattice = { base: firstDay * DAY_MS + timeOfDay, step: 7 * DAY_MS, delay };
    }
  }
  if (lattices.size > 10_000) lattices.clear();
  lattices.set(key, lattice);
  return lattice;
}

function occurrence(timeZone: string, lattice: Lattice, i: number): number {
  return resolveLocalTime(timeZone, lattice.base + i * lattice.step);
}

/** The lattice index whose wall time is the latest at or before the wall-clock time at `t`; its occurrence is ≤ t. */
function indexAtOrBefore(timeZone: string, lattice: Lattice, t: number): number {
  return Math.floor((wallTimeAt(timeZone, t) - lattice.base) / lattice.step);
}

function assertZone(timeZone: string): void {
  if (!isValidTimeZone(timeZone)) throw new RangeError(`"${String(timeZone).slice(0, 64)}" is not a known IANA time zone`);
}

function assertInstant(name: string, d: Date): number {
  const t = d instanceof Date ? d.getTime() : Number.NaN;
  if (!Number.isFinite(t)) throw new RangeError(`${name} must be a valid Date`);
  return t;
}

function makeWindow(start: number, end: number, delay: number): Window {
  return { start: new Date(start), end: new Date(end), runAt: new Date(end + delay) };
}

/**
 * Scans occurrences forward from the one at or before `after`: returns the latest occurrence
 * ≤ after and the lattice index to continue from.
 */
function scanTo(timeZone: string, lattice: Lattice, after: number): { previous: number; next: number } {
  let i = indexAtOrBefore(timeZone, lattice, after);
  let previous = occurrence(timeZone, lattice, i);
  // Later wall times can still map to instants ≤ after (a wall time repeated after clocks went back).
  for (;;) {
    const t = occurrence(timeZone, lattice, i + 1);
    if (t > after) return { previous, next: i + 1 };
    previous = t;
    i += 1;
  }
}

/** Every window whose end lies in (from, to], in order. */
export function windowsBetween(s: Schedule, timeZone: string, from: Date, to: Date): Window[] {
  const lattice = latticeOf(s);
  assertZone(timeZone);
  const a = assertInstant("from", from);
  const b = assertInstant("to", to);
  const windows: Window[] = [];
  if (b <= a) return windows;
  let { previous, next: i } = scanTo(timeZone, lattice, a);
  for (;; i += 1) {
    const t = occurrence(timeZone, lattice, i);
    if (t > b) return windows;
    if (t === previous) continue; // equal instants are one occurrence
    windows.push(makeWindow(previous, t, lattice.delay));
    previous = t;
  }
}

/** The first window whose end is later than `after`. */
export function nextWindow(s: Schedule, timeZone: string, after: Date): Window {
  const lattice = latticeOf(s);
  assertZone(timeZone);
  const a = assertInstant("after", after);
  const { previous, next } = scanTo(timeZone, lattice, a);
  return makeWindow(previous, occurrence(timeZone, lattice, next), lattice.delay);
}

/** The latest window whose end is at or before `now` (what "run now" delivers by default). */
export function latestCompleteWindow(s: Schedule, timeZone: string, now: Date): Window {
  const lattice = latticeOf(s);
  assertZone(timeZone);
  const n = assertInstant("now", now);
  const { previous: end, next } = scanTo(timeZone, lattice, n);
  // `next - 1` is the index of `end` or a later index collapsed into it: walk back to an earlier instant.
  let i = next - 2;
  let start = occurrence(timeZone, lattice, i);
  while (start >= end) {
    i -= 1;
    start = occurrence(timeZone, lattice, i);
  }
  return makeWindow(start, end, lattice.delay);
}

/** The nominal length of a window in minutes (a day, a week or the interval), ignoring DST. */
export function windowLengthMinutesNominal(s: Schedule): number {
  return latticeOf(s).step / MINUTE_MS;
}

/**
 * The longest window of this schedule in `timeZone` that holds an instant of [from, to), in
 * minutes. Windows are aligned to local time, so one across a fall-back lasts its nominal length
 * plus the shift (60 minutes in most zones, 30 on Lord Howe, 120 at Troll); the others, at most
 * the nominal length.
 */
export function longestWindowMinutes(s: Schedule, timeZone: string, from: Date, to: Date): number {
  const lattice = latticeOf(s);
  assertZone(timeZone);
  let longest = lattice.step;
  for (const change of offsetChangesBetween(timeZone, assertInstant("from", from), assertInstant("to", to))) {
    if (change.after >= change.before) continue;
    // The window holding the last instant before the clocks go back: the one stretched.
    const window = nextWindow(s, timeZone, new Date(change.at - 1));
    longest = Math.max(longest, window.end.getTime() - window.start.getTime());
  }
  return longest / MINUTE_MS;
}

/** The delay between a window's end and its run, in milliseconds. */
export function delayMilliseconds(s: Schedule): number {
  return latticeOf(s).delay;
}

/**
 * When a task with this schedule should next run, computed from `now` (on create or enable):
 * the runAt of the first window whose run is still ahead, so no past windows are flooded in.
 * Schedule and time-zone changes continue from what was covered instead: see resumeAfterChange.
 */
export function computeNextRunAt(s: Schedule, timeZone: string, now: Date): Date {
  const n = assertInstant("now", now);
  return nextWindow(s, timeZone, new Date(n - delayMilliseconds(s))).runAt;
}

export type NormalizedSchedule = { frequency: Schedule["frequency"]; time: string | null; dayOfWeek: number | null; everyMinutes: number | null; delayMinutes: number };

/**
 * A schedule with only the fields its frequency uses and the delay's default filled in, so two
 * descriptions of the same schedule (a request body, a stored row with null columns) compare equal.
 */
export function normalizeSchedule(s: Schedule): NormalizedSchedule {
  const timed = s.frequency === "daily" || s.frequency === "weekly";
  return {
    frequency: s.frequency,
    time: timed ? (s.time ?? null) : null,
    dayOfWeek: s.frequency === "weekly" ? (s.dayOfWeek ?? null) : null,
    everyMinutes: s.frequency === "interval" ? (s.everyMinutes ?? null) : null,
    delayMinutes: s.delayMinutes ?? 0,
  };
}

/** True when both describe the same schedule (same windows, same delay). */
export function sameSchedule(a: Schedule, b: Schedule): boolean {
  const x = normalizeSchedule(a);
  const y = normalizeSchedule(b);
  return x.frequency === y.frequency && x.time === y.time && x.dayOfWeek === y.dayOfWeek && x.everyMinutes === y.everyMinutes && x.delayMinutes === y.delayMinutes;
}

/** What the scheduler knows of a task's progress, under the schedule and zone it had. */
export type ScheduleProgress = {
  schedule: Schedule;
  timeZone: string | null;
  /** runAt of the next window the scheduler will record (null: not scheduled). */
  nextRunAt: Date | null;
  /** Where the recorded scheduled windows end (null: nothing recorded since the task was created). */
  coveredUntil: Date | null;
};

/**
 * A task's nextRunAt and coveredUntil after its schedule or time zone changed. It continues from
 * where its recorded windows end: nextRunAt is the runAt of the first window of the new schedule
 * that ends after `coveredUntil` (possibly already due: the scheduler then runs it, starting at
 * `coveredUntil`, at its next tick), so nothing owed is dropped and no window overlaps or misses
 * the previous one. With nothing recorded yet, a task whose first window is already due (the
 * scheduler was behind) still owes it from its start; otherwise it starts from `now`, like a
 * new task.
 */
export function resumeAfterChange(before: ScheduleProgress, after: { schedule: Schedule; timeZone: string }, now: Date): { nextRunAt: Date; coveredUntil: Date | null } {
  let coveredUntil = before.coveredUntil;
  if (!coveredUntil && before.nextRunAt && before.nextRunAt.getTime() <= now.getTime() && before.timeZone && isValidTimeZone(before.timeZone)) {
    const owed = nextWindow(before.schedule, before.timeZone, new Date(before.nextRunAt.getTime() - delayMilliseconds(before.schedule) - 1));
    coveredUntil = owed.start;
  }
  if (!coveredUntil) return { nextRunAt: computeNextRunAt(after.schedule, after.timeZone, now), coveredUntil: null };
  return { nextRunAt: nextWindow(after.schedule, after.timeZone, coveredUntil).runAt, coveredUntil };
}

/**
 * A task's nextRunAt and coveredUntil when it is enabled again. The disabled period is not
 * covered: the first window is the plain one due next, as for a new task. It never reaches back
 * over windows already recorded (after a time-zone or schedule change made while disabled, the
 * recorded ones may end inside it): it starts where they end. Coverage is kept at the later of
 * the two, so a schedule change made afterwards continues from there too.
 */
export function resumeAfterEnable(s: Schedule, timeZone: string, coveredUntil: Date | null, now: Date): { nextRunAt: Date; coveredUntil: Date | null } {
  const first = nextWindow(s, timeZone, new Date(assertInstant("now", now) - delayMilliseconds(s)));
  if (!coveredUntil) return { nextRunAt: first.runAt, coveredUntil: null };
  return { nextRunAt: first.runAt, coveredUntil: coveredUntil.getTime() > first.start.getTime() ? coveredUntil : first.start };
}
