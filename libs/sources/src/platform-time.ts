// "2016-08-29 14:30:24.565+0000", the platform's text form of an instant; without a zone it is UTC
// (account configuration writes "2017-11-13 13:20:01").
const PLATFORM_TIME = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?(Z|[+-]\d{2}:?\d{2})?$/;

/** Offsets in use run from -12:00 to +14:00; one beyond ±14:00 is not an offset. */
export const MAX_OFFSET_MINUTES = 14 * 60;

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * Epoch ms of a platform time string, or NaN when it is not one: each field must be in range
 * (a real calendar day, hours to 23, minutes and seconds to 59, an offset within ±14:00), never
 * carried into the next month or day. Years are taken as written (0001 is year 1, not 1901).
 * One parser for the fetcher (which windows records by it) and the report mappers (which write
 * it): were they to differ, a record could be kept and then refused, or dropped unseen.
 */
export function parsePlatformTime(text: string): number {
  const m = PLATFORM_TIME.exec(text);
  if (!m) return Number.NaN;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = Number(m[6]);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 59) return Number.NaN;
  let offsetMinutes = 0;
  const zone = m[8];
  if (zone !== undefined && zone !== "Z") {
    const digits = zone.slice(1).replace(":", "");
    const hours = Number(digits.slice(0, 2));
    const minutes = Number(digits.slice(2, 4));
    if (minutes > 59 || hours * 60 + minutes > MAX_OFFSET_MINUTES) return Number.NaN;
    offsetMinutes = (zone[0] === "-" ? -1 : 1) * (hours * 60 + minutes);
  }
  // setUTCFullYear takes the year as given; Date.UTC would read 0–99 as 1900–1999.
  const midnight = new Date(0).setUTCFullYear(year, month - 1, day);
  const ms = m[7] ? Number(m[7].padEnd(3, "0")) : 0;
  return midnight + ((hour * 60 + minute - offsetMinutes) * 60 + second) * 1000 + ms;
}

/**
 * The latest instant a report writes: 10:00 UTC on 31 December 9999, the last millisecond of
 * year 9999 in the zone furthest ahead (+14:00). A later instant would read as year 10000 in some
 * tenant's zone, which neither ISO 8601 nor a spreadsheet date can hold. The earliest is the
 * epoch: in the zone furthest behind (-12:00) that is 1969-12-31T12:00-12:00, still writable.
 */
const LATEST_INSTANT_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999) - MAX_OFFSET_MINUTES * 60_000;

/** Whether `ms` is a whole epoch millisecond a report can write in any zone (1970 to 9999). */
export function isWritableInstant(ms: number): boolean {
  return Number.isInteger(ms) && ms >= 0 && ms <= LATEST_INSTANT_MS;
}

/** What a record says of one instant: the time, that it gives none, or what is wrong with it. */
export type InstantReading = { ms: number } | { absent: true } | { problem: { key: string; message: string } };

function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/**
 * An instant given as epoch ms in `msKey` (e.g. `startTimeL`) or as platform text in `textKey`
 * (e.g. `startTime`), the text read when the ms are not given. The platform marks "not yet" with
 * -1 / "undefined": neither is a time. Epoch ms must be a whole number from 1970 to 9999 (a
 * fraction, or microseconds sent as ms, would otherwise be written as a garbled or far-future
 * time with the record counted good); text must be a real time in that same range. One reading
 * for the fetcher (which windows a record by its start) and the report mappers (which write it):
 * were they to differ, a record could be kept and then refused, or dropped unseen.
 */
export function readPlatformInstant(o: Record<string, unknown>, msKey: string, textKey: string | null): InstantReading {
  const ms = o[msKey];
  if (typeof ms === "number" && ms !== -1) {
    return isWritableInstant(ms) ? { ms } : { problem: { key: msKey, message: `expected whole epoch milliseconds from 1970 to 9999, got ${ms}` } };
  }
  if (ms !== undefined && ms !== null && ms !== -1) return { problem: { key: msKey, message: `expected epoch milliseconds, got ${describeValue(ms)}` } };
  if (textKey === null) return { absent: true };
  const text = o[textKey];
  if (text === undefined || text === null || text === "undefined" || text === "") return { absent: true };
  if (typeof text !== "string") return { problem: { key: textKey, message: `expected a time, got ${describeValue(text)}` } };
  const parsed = parsePlatformTime(text);
  if (Number.isNaN(parsed)) return { problem: { key: textKey, message: `not a time: ${JSON.stringify(text.slice(0, 40))}` } };
  if (!isWritableInstant(parsed)) return { problem: { key: textKey, message: `expected a time from 1970 to 9999, got ${JSON.stringify(text.slice(0, 40))}` } };
  return { ms: parsed };
}
