import { DateTime, IANAZone } from "luxon";

const QUARTER_HOUR_MS = 15 * 60_000;
const CACHE_LIMIT = 50_000;

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

function pad3(n: number): string {
  return n < 10 ? `00${n}` : n < 100 ? `0${n}` : String(n);
}

/**
 * Renders instants in one IANA zone: ISO 8601 with the zone's offset at that instant
 * ("2026-03-29T03:15:00.000+02:00"), or the local wall-clock time for spreadsheet date cells.
 * Luxon answers the offset, memoised per UTC quarter hour when the offset is the same at both
 * ends of it (nearly always: most changes fall on quarter hours, but some fell at 00:01 local,
 * e.g. St John's until 2011); in a quarter hour holding a change, each instant is asked.
 * Offsets are written in whole minutes (ISO 8601 has no seconds there; old local mean times such
 * as Monrovia's -00:44:30 had them), with the local time computed from that same offset, so
 * the text always names the exact instant.
 */
/**
 * Zone names already found valid. Luxon's check builds an Intl.DateTimeFormat every time
 * (~0.3 ms), and every run asks again for the same few zones; validity does not change while
 * the process runs.
 */
const knownZones = new Set<string>();

function isKnownZone(zone: string): boolean {
  if (knownZones.has(zone)) return true;
  if (!IANAZone.isValidZone(zone)) return false;
  knownZones.add(zone);
  return true;
}

export class ZonedTime {
  readonly zone: string;
  private readonly iana: IANAZone;
  private readonly offsets = new Map<number, number>();
  /** The rendered "yyyy-mm-ddThh:mm:" of the last minute asked for, and that minute's offset text. */
  private lastMinute = Number.NaN;
  private minutePrefix = "";
  private offsetText = "";

  constructor(zone: string) {
    if (!isKnownZone(zone)) throw new RangeError(`unknown time zone ${JSON.stringify(zone)}`);
    this.zone = zone;
    this.iana = IANAZone.create(zone);
  }

  /** The zone's UTC offset in whole minutes at `ms`. */
  offsetMinutes(ms: number): number {
    const bucketOffset = this.quarterHourOffset(ms);
    return Number.isNaN(bucketOffset) ? Math.round(this.iana.offset(ms)) : bucketOffset;
  }

  /** The offset of the quarter hour holding `ms`, or NaN when the offset changes inside it. */
  private quarterHourOffset(ms: number): number {
    const bucket = Math.floor(ms / QUARTER_HOUR_MS);
    let offset = this.offsets.get(bucket);
    if (offset === undefined) {
      const start = bucket * QUARTER_HOUR_MS;
      const first = this.iana.offset(start);
      offset = first === this.iana.offset(start + QUARTER_HOUR_MS - 1) ? Math.round(first) : Number.NaN;
      if (this.offsets.size >= CACHE_LIMIT) this.offsets.clear();
      this.offsets.set(bucket, offset);
    }
    return offset;
  }

  /**
   * ISO 8601 with milliseconds and the zone's offset. Report rows come roughly in time order,
   * so the minute's text is kept and only seconds and milliseconds are formatted per call.
   */
  iso(ms: number): string {
    // A change may fall inside a minute (old local mean times had offsets in seconds).
    if (Number.isNaN(this.quarterHourOffset(ms))) return this.isoFull(ms);
    const minute = Math.floor(ms / 60_000);
    if (minute !== this.lastMinute) {
      const full = this.isoFull(minute * 60_000);
      this.lastMinute = minute;
      this.minutePrefix = full.slice(0, full.length - 12);
      this.offsetText = full.slice(full.length - 6);
    }
    const inMinute = ms - minute * 60_000;
    const seconds = Math.floor(inMinute / 1000);
    return `${this.minutePrefix}${pad2(seconds)}.${pad3(inMinute - seconds * 1000)}${this.offsetText}`;
  }

  private isoFull(ms: number): string {
    const offset = this.offsetMinutes(ms);
    const d = new Date(ms + offset * 60_000);
    const year = d.getUTCFullYear();
    const yearText = year >= 0 && year <= 9999 ? String(year).padStart(4, "0") : DateTime.fromMillis(ms, { zone: this.zone }).toFormat("yyyy");
    const abs = Math.abs(offset);
    const sign = offset < 0 ? "-" : "+";
    return (
      `${yearText}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}T${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:` +
      `${pad2(d.getUTCSeconds())}.${pad3(d.getUTCMilliseconds())}${sign}${pad2(Math.floor(abs / 60))}:${pad2(abs % 60)}`
    );
  }

  /**
   * The local wall-clock time as a Date whose UTC fields are the local fields: spreadsheet
   * dates carry no zone, so a cell shows what a clock in the tenant's zone showed.
   */
  wallClock(ms: number): Date {
    return new Date(ms + this.offsetMinutes(ms) * 60_000);
  }
}
