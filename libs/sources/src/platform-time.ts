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
