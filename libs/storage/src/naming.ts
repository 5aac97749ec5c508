import { DateTime } from "luxon";

/** Windows device names: a file or folder called like this (with any extension) cannot be opened there. */
const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])$/;

/** Longest slug kept: leaves room for two timestamps and extensions under 255-byte name limits. */
export const MAX_SLUG_LENGTH = 80;

/**
 * A file-name-safe form of a task description: ASCII letters and digits in lower case separated
 * by single hyphens ("Daily Messaging / EU" → "daily-messaging-eu"). Accents are folded
 * ("Café" → "cafe"); anything else (slashes, dots, emoji, control characters) separates words.
 * Never empty, never a Windows device name, never longer than MAX_SLUG_LENGTH.
 */
export function slugify(description: string): string {
  const folded = description.normalize("NFKD").replace(/\p{M}+/gu, "").toLowerCase();
  let slug = folded.replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
  if (slug.length > MAX_SLUG_LENGTH) slug = slug.slice(0, MAX_SLUG_LENGTH).replace(/-+$/, "");
  if (slug === "") return "report";
  if (WINDOWS_RESERVED.test(slug)) return `${slug}-report`;
  return slug;
}

/**
 * A window boundary in the given zone, e.g. 2026-11-22T0000+0100: ISO 8601 basic time and offset,
 * so no ":" (not allowed on Windows, awkward in URLs) and it still sorts by time within one offset.
 */
export function formatWindowInstant(instant: Date, zone: string): string {
  const local = DateTime.fromJSDate(instant, { zone });
  if (!local.isValid) throw new RangeError(`cannot express ${instant.toISOString()} in zone "${zone}": ${local.invalidExplanation ?? local.invalidReason}`);
  return local.toFormat("yyyy-MM-dd'T'HHmmZZZ");
}

export interface ReportFileNameInput {
  /** The task's free-text description. */
  description: string;
  windowStart: Date;
  windowEnd: Date;
  /** Report format, the file extension without dot: csv, json, ndjson, xlsx… */
  format: string;
  /** IANA zone the times are written in; the tenant's zone by default, "UTC" when it has none. */
  zone: string;
  /** Adds ".pgp" (every delivered file is encrypted; false for the plain staging copy). */
  encrypted?: boolean;
}

/** `<description slug>_<window start>_<window end>.<format>[.pgp]`, safe on Windows, POSIX and in S3/GCS keys. */
export function reportFileName(input: ReportFileNameInput): string {
  const extension = input.format.toLowerCase().replace(/[^a-z0-9]/g, "");
  if (extension === "") throw new RangeError(`report format "${input.format}" gives no file extension`);
  const start = formatWindowInstant(input.windowStart, input.zone);
  const end = formatWindowInstant(input.windowEnd, input.zone);
  return `${slugify(input.description)}_${start}_${end}.${extension}${input.encrypted === false ? "" : ".pgp"}`;
}

/** The optional date folders `YYYY/MM/DD` of a window: the local date its data starts on. */
export function dateSubfolder(windowStart: Date, zone: string): string {
  const local = DateTime.fromJSDate(windowStart, { zone });
  if (!local.isValid) throw new RangeError(`cannot express ${windowStart.toISOString()} in zone "${zone}"`);
  return local.toFormat("yyyy/MM/dd");
}
