/**
 * UTC offsets of IANA zones and the mapping of local wall-clock times to instants, with the
 * DST rules of the schedule (see resolveLocalTime). Built on Intl only: one cached formatter
 * per zone and small memo tables, because the scheduler resolves local times for many tasks.
 */

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

const formatters = new Map<string, Intl.DateTimeFormat>();
const validity = new Map<string, boolean>();

// IANA names ("Europe/London", "UTC", "Etc/GMT+5"); Intl alone would also accept offsets on newer runtimes.
const ZONE_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/;

/** True when `timeZone` is an IANA zone name this runtime knows. */
export function isValidTimeZone(timeZone: unknown): timeZone is string {
  if (typeof timeZone !== "string" || timeZone.length === 0 || timeZone.length > 64) return false;
  const known = validity.get(timeZone);
  if (known !== undefined) return known;
  let valid = ZONE_NAME.test(timeZone);
  if (valid) {
    try {
      formatterFor(timeZone);
    } catch {
      valid = false;
    }
  }
  if (validity.size > 10_000) validity.clear();
  validity.set(timeZone, valid);
  return valid;
}

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let dtf = formatters.get(timeZone);
  if (!dtf) {
    dtf = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      era: "short",
    });
    formatters.set(timeZone, dtf);
  }
  return dtf;
}

// "11/23/2026 AD, 06:22:28" — parsing the formatted string is much faster than formatToParts.
const FORMATTED = /^(\d+)\/(\d+)\/(\d+) (AD|BC), (\d+):(\d+):(\d+)$/;

const HOUR_MS = 3_600_000;
const hourlyOffsets = new Map<string, Map<number, number>>();
const resolved = new Map<string, Map<number, number>>();

// Both memo tables together hold at most this many entries (a few MB), whatever the zones.
const MEMO_LIMIT = 200_000;
let memoEntries = 0;

function remember(table: Map<number, number>, key: number, value: number): void {
  if (memoEntries >= MEMO_LIMIT) {
    for (const zone of hourlyOffsets.values()) zone.clear();
    for (const zone of resolved.values()) zone.clear();
    memoEntries = 0;
  }
  table.set(key, value);
  memoEntries += 1;
}

/** The zone's UTC offset in milliseconds at instant `t` (ms since the epoch). */
export function offsetAt(timeZone: string, t: number): number {
  // Zones change offset at most once within an hour, so an hour that starts and ends with the
  // same offset has it throughout; such hours are remembered (NaN marks an hour with a change).
  const hour = Math.floor(t / HOUR_MS);
  let hours = hourlyOffsets.get(timeZone);
  if (!hours) {
    hours = new Map();
    hourlyOffsets.set(timeZone, hours);
  }
  let offset = hours.get(hour);
  if (offset === undefined) {
    const first = exactOffsetAt(timeZone, hour * HOUR_MS);
    const last = exactOffsetAt(timeZone, hour * HOUR_MS + HOUR_MS - 1000);
    offset = first === last ? first : Number.NaN;
    remember(hours, hour, offset);
  }
  return Number.isNaN(offset) ? exactOffsetAt(timeZone, t) : offset;
}

function exactOffsetAt(timeZone: string, t: number): number {
  const seconds = Math.floor(t / 1000) * 1000;
  const dtf = formatterFor(timeZone);
  const m = FORMATTED.exec(dtf.format(seconds));
  if (m) {
    const year = m[4] === "BC" ? 1 - Number(m[3]) : Number(m[3]);
    return utcMilliseconds(year, Number(m[1]) - 1, Number(m[2]), Number(m[5]), Number(m[6]), Number(m[7])) - seconds;
  }
  // Another ICU may format differently: read the parts (slower, same result).
  const parts: Record<string, string> = {};
  for (const { type, value } of dtf.formatToParts(seconds)) parts[type] = value;
  const year = /^B/.test(parts.era ?? "") ? 1 - Number(parts.year) : Number(parts.year);
  return utcMilliseconds(year, Number(parts.month) - 1, Number(parts.day), Number(parts.hour) % 24, Number(parts.minute), Number(parts.second)) - seconds;
}

function utcMilliseconds(year: number, month: number, day: number, hour: number, minute: number, second: number): number {
  if (year >= 100) return Date.UTC(year, month, day, hour, minute, second);
  // Date.UTC reads years 0–99 as 1900–1999.
  const d = new Date(Date.UTC(2000, month, day, hour, minute, second));
  d.setUTCFullYear(year);
  return d.getTime();
}

/** The local wall-clock time at instant `t`, as "local milliseconds" (the wall time read as if it were UTC). */
export function wallTimeAt(timeZone: string, t: number): number {
  return t + offsetAt(timeZone, t);
}

/**
 * The instant of local wall-clock time `local` (local milliseconds): the first instant whose
 * wall-clock time is at or past it. So a time that occurs twice (clocks going back) means its
 * first occurrence, and a time that does not exist (clocks going forward) means the instant the
 * clock jumps. This function is monotone: a later wall time never maps to an earlier instant.
 */
export function resolveLocalTime(timeZone: string, local: number): number {
  let memo = resolved.get(timeZone);
  if (!memo) {
    memo = new Map();
    resolved.set(timeZone, memo);
  } else {
    const hit = memo.get(local);
    if (hit !== undefined) return hit;
  }
  const instant = computeLocalTime(timeZone, local);
  remember(memo, local, instant);
  return instant;
}

function computeLocalTime(timeZone: string, local: number): number {
  // Offsets a day either side bracket any transition that can affect this wall time
  // (the approach of the Temporal polyfill's possible-instants computation).
  const before = offsetAt(timeZone, local - DAY_MS);
  const after = offsetAt(timeZone, local + DAY_MS);
  const candidates: number[] = [];
  for (const offset of before === after ? [before] : [before, after]) {
    const t = local - offset;
    if (offsetAt(timeZone, t) === offset) candidates.push(t);
  }
  if (candidates.length > 0) return Math.min(...candidates);
  // A gap: the wall time was skipped. Find the instant the offset changes, between the instant
  // the wall time would have had under the later offset and under the earlier one.
  let lo = local - Math.max(before, after);
  let hi = local - Math.min(before, after);
  const loOffset = offsetAt(timeZone, lo);
  while (hi - lo > 1000) {
    const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
    if (offsetAt(timeZone, mid) === loOffset) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** A change of a zone's UTC offset: at instant `at` (ms since the epoch), from `before` to `after` (ms). */
export type OffsetChange = { at: number; before: number; after: number };

// Samples this far apart see every change: no zone changes its offset twice within 6 hours.
const SAMPLE_MS = 6 * HOUR_MS;
const changesByYear = new Map<string, OffsetChange[]>();

/** Every change of the zone's UTC offset at an instant in [from, to) (ms since the epoch), in order. */
export function offsetChangesBetween(timeZone: string, from: number, to: number): OffsetChange[] {
  const changes: OffsetChange[] = [];
  for (let year = new Date(from).getUTCFullYear(); Date.UTC(year, 0, 1) < to; year += 1) {
    for (const change of offsetChangesIn(timeZone, year)) if (change.at >= from && change.at < to) changes.push(change);
  }
  return changes;
}

// By UTC year, remembered: a year's scan costs about 1,500 formats, and the answer never changes.
function offsetChangesIn(timeZone: string, year: number): OffsetChange[] {
  const key = `${timeZone}|${year}`;
  const known = changesByYear.get(key);
  if (known) return known;
  const start = Date.UTC(year, 0, 1);
  const end = Date.UTC(year + 1, 0, 1);
  const changes: OffsetChange[] = [];
  // From the second before the year, so a change at its first instant is the year's.
  let t = start - 1000;
  let offset = exactOffsetAt(timeZone, t);
  while (t < end - 1000) {
    const next = Math.min(t + SAMPLE_MS, end - 1000);
    const nextOffset = exactOffsetAt(timeZone, next);
    if (nextOffset !== offset) {
      let lo = t;
      let hi = next;
      while (hi - lo > 1000) {
        const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
        if (exactOffsetAt(timeZone, mid) === offset) lo = mid;
        else hi = mid;
      }
      changes.push({ at: hi, before: offset, after: nextOffset });
    }
    t = next;
    offset = nextOffset;
  }
  if (changesByYear.size > 10_000) changesByYear.clear();
  changesByYear.set(key, changes);
  return changes;
}

export { DAY_MS, MINUTE_MS };
