export type { NormalizedSchedule, Schedule, ScheduleProgress, Window } from "./schedule.js";
export {
  computeNextRunAt,
  delayMilliseconds,
  latestCompleteWindow,
  nextWindow,
  normalizeSchedule,
  resumeAfterChange,
  resumeAfterEnable,
  sameSchedule,
  validateSchedule,
  windowLengthMinutesNominal,
  windowsBetween,
} from "./schedule.js";
export { isValidTimeZone, offsetAt, resolveLocalTime, wallTimeAt } from "./time-zone.js";
export { catchUpWindowsFor, planDueWindows, type DuePlan } from "./catch-up.js";
