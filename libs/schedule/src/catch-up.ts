import { delayMilliseconds, nextWindow, windowLengthMinutesNominal, windowsBetween, type Schedule, type Window } from "./schedule.js";

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;

/** What a scheduler tick does with one due task. */
export type DuePlan = {
  /** Windows to run now, oldest first (at most `catchUpWindows`). */
  run: Window[];
  /** Older missed windows beyond the catch-up limit, oldest first: recorded as skipped. */
  skip: Window[];
  /**
   * When the task was down so long that its oldest missed windows were not even listed, the
   * span they cover (from the start of the first missed window to the start of `skip[0]` or
   * `run[0]`): recorded as one skipped entry so the history still shows the whole gap.
   */
  skippedSpan: { start: Date; end: Date } | null;
  /** The runAt of the first window still ahead: the task's new nextRunAt. */
  nextRunAt: Date;
};

/** How many windows `days` of catch-up allow for this schedule (at least one). */
export function catchUpWindowsFor(s: Schedule, days: number): number {
  return Math.max(1, Math.floor((days * 1440) / windowLengthMinutesNominal(s)));
}

/**
 * The windows a due task owes at `now`: every window whose runAt lies in [nextRunAt, now].
 * The newest `catchUpWindows` run (oldest first); older ones are skipped. At most
 * `2 × catchUpWindows` windows are listed, so a task that was down for years costs no more
 * than one that was down for a week.
 *
 * `coveredUntil` is where the task's recorded windows end (null: nothing to continue from).
 * Windows that end at or before it are already covered and left out; the first one left starts
 * at `coveredUntil`, so after a schedule or time-zone change the new windows neither overlap
 * the old ones nor leave a gap after them.
 */
export function planDueWindows(s: Schedule, timeZone: string, nextRunAt: Date, now: Date, catchUpWindows: number, coveredUntil: Date | null = null): DuePlan {
  const plan = planGridWindows(s, timeZone, nextRunAt, now, catchUpWindows);
  return coveredUntil ? continueFrom(plan, coveredUntil) : plan;
}

function continueFrom(plan: DuePlan, coveredUntil: Date): DuePlan {
  const c = coveredUntil.getTime();
  const uncovered = (w: { end: Date }) => w.end.getTime() > c;
  const startAtCoverage = <T extends { start: Date }>(w: T): T => ({ ...w, start: new Date(c) });
  const skip = plan.skip.filter(uncovered);
  const run = plan.run.filter(uncovered);
  let skippedSpan = plan.skippedSpan && uncovered(plan.skippedSpan) ? plan.skippedSpan : null;
  if (skippedSpan) skippedSpan = startAtCoverage(skippedSpan);
  else if (skip.length > 0) skip[0] = startAtCoverage(skip[0]!);
  else if (run.length > 0) run[0] = startAtCoverage(run[0]!);
  return { run, skip, skippedSpan, nextRunAt: plan.nextRunAt };
}

function planGridWindows(s: Schedule, timeZone: string, nextRunAt: Date, now: Date, catchUpWindows: number): DuePlan {
  const delay = delayMilliseconds(s);
  const to = now.getTime() - delay;
  // Ends at or after nextRunAt − delay: the window whose runAt is nextRunAt is owed too.
  const from = nextRunAt.getTime() - delay - 1;
  const limit = Math.max(1, Math.floor(catchUpWindows));
  const nominal = windowLengthMinutesNominal(s) * MINUTE_MS;
  // Far enough back to list more than `limit` windows even when DST shortens some of them.
  const horizon = to - (2 * limit + 1) * nominal - 2 * HOUR_MS;
  const lower = Math.max(from, horizon);
  const windows = to > lower ? windowsBetween(s, timeZone, new Date(lower), new Date(to)) : [];
  const run = windows.slice(-limit);
  const skip = windows.slice(0, Math.max(0, windows.length - limit));
  let skippedSpan: DuePlan["skippedSpan"] = null;
  if (lower > from) {
    const start = nextWindow(s, timeZone, new Date(from)).start;
    const end = windows[0]?.start ?? nextWindow(s, timeZone, new Date(lower)).start;
    if (start.getTime() < end.getTime()) skippedSpan = { start, end };
  }
  const next = nextWindow(s, timeZone, new Date(Math.max(to, from))).runAt;
  return { run, skip, skippedSpan, nextRunAt: next };
}
