export type { NormalizedSchedule, Schedule, ScheduleProgress, Window } from "./schedule.js";
export {
  computeNextRunAt,
  delayMilliseconds,
  latestCompleteWindow,
  longestWindowMinutes,
  nextWindow,
  normalizeSchedule,
  resumeAfterChange,
  resumeAfterEnable,
  sameSchedule,
  validateSchedule,
  windowLengthMinutesNominal,
  windowsBetween,
} from "./schedule.js";
export { isValidTimeZone, offsetAt, offsetChangesBetween, resolveLocalTime, wallTimeAt, type OffsetChange } from "./time-zone.js";
export { catchUpWindowsFor, planDueWindows, type DuePlan } from "./catch-up.js";
