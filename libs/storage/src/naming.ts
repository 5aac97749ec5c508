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
  return inZone(instant, zone).toFormat("yyyy-MM-dd'T'HHmmZZZ");
}

/** The instant's local time in `zone`; a clear RangeError for a zone that cannot express it. */
function inZone(instant: Date, zone: string): DateTime {
  const local = DateTime.fromJSDate(instant, { zone });
  if (!local.isValid) throw new RangeError(`cannot express ${instant.toISOString()} in zone "${zone}": ${local.invalidExplanation ?? local.invalidReason}`);
  return local;
}

/**
 * Placeholders of a task's `fileNamePattern`, e.g. "conversations_{startDate}" or
 * "{report}-{start}". Times are the window's, in the same zone as the default name.
 */
export const FILE_NAME_PLACEHOLDERS = {
  task: "the task description as a slug (daily-messaging-eu)",
  report: "the report id (messaging-conversations)",
  start: "window start, 2026-11-22T0000+0100",
  end: "window end, 2026-11-23T0000+0100",
  startDate: "window start date, 2026-11-22",
  endDate: "window end date, 2026-11-23",
  startTime: "window start time, 0000 (0200+0100 in the hour a change back from daylight time repeats)",
  endTime: "window end time, 0000 (likewise)",
  runId: "the run's id",
} as const;
export type FileNamePlaceholder = keyof typeof FILE_NAME_PLACEHOLDERS;

/** Longest pattern accepted. */
export const MAX_FILE_NAME_PATTERN_LENGTH = 120;
/** Most file systems and SFTP servers take names of at most 255 bytes. */
const MAX_FILE_NAME_BYTES = 255;
/** Room kept for the extensions after the pattern: the longest, ".ndjson.pgp" / ".ndjson.asc". */
const EXTENSIONS_ROOM = 11;
/** The longest each placeholder expands to (all ASCII). */
const PLACEHOLDER_MAX_LENGTH: Record<FileNamePlaceholder, number> = {
  // Report ids come from the catalogue: the longest is well under 40 characters.
  task: MAX_SLUG_LENGTH, report: 40, start: 20, end: 20, startDate: 10, endDate: 10, startTime: 9, endTime: 9, runId: 36,
};
const PLACEHOLDER = /\{([A-Za-z]+)\}/g;

/** Whether `name` is one of FILE_NAME_PLACEHOLDERS: own keys only, not Object.prototype's ({constructor}, {toString}…). */
function isPlaceholder(name: string): name is FileNamePlaceholder {
  return Object.hasOwn(FILE_NAME_PLACEHOLDERS, name);
}
/** What may stand between placeholders: safe on Windows, POSIX and in S3/GCS keys and URLs. */
const PATTERN_LITERAL = /^[A-Za-z0-9._-]*$/;
/** Placeholders that tell windows apart (any one of them is enough for daily and weekly tasks). */
const WINDOW_PLACEHOLDERS: FileNamePlaceholder[] = ["start", "end", "startDate", "endDate", "runId"];
/** Placeholders that tell apart windows of the same day (interval tasks need one). */
const INTRADAY_PLACEHOLDERS: FileNamePlaceholder[] = ["start", "end", "startTime", "endTime", "runId"];

/**
 * Whether names from `pattern` (none: the default, `<task>_<start>_<end>`) hold the whole window,
 * both its instants, or the run's id: then no other window's name can equal them.
 */
export function namesWholeWindow(pattern: string | undefined): boolean {
  if (pattern === undefined) return true;
  const used = new Set([...pattern.matchAll(PLACEHOLDER)].map(([, name]) => name));
  return used.has("runId") || (used.has("start") && used.has("end"));
}

/**
 * Problems with a file-name pattern (empty when usable): unknown placeholders, characters that
 * are not safe in file names and object keys, and patterns that would give two windows of the
 * task the same name (one file would overwrite the other at the destination).
 * `frequency` is the task's schedule frequency, when known.
 */
export function validateFileNamePattern(pattern: string, frequency?: "daily" | "weekly" | "interval"): string[] {
  const problems: string[] = [];
  if (pattern.length === 0 || pattern.length > MAX_FILE_NAME_PATTERN_LENGTH) problems.push(`must be 1 to ${MAX_FILE_NAME_PATTERN_LENGTH} characters`);
  const used = new Set<string>();
  for (const [, name] of pattern.matchAll(PLACEHOLDER)) {
    if (!isPlaceholder(name!)) problems.push(`unknown placeholder {${name}}; use ${Object.keys(FILE_NAME_PLACEHOLDERS).map((k) => `{${k}}`).join(", ")}`);
    used.add(name!);
  }
  const literal = pattern.replace(PLACEHOLDER, "");
  if (!PATTERN_LITERAL.test(literal)) {
    const bad = [...new Set([...literal].filter((ch) => !/[A-Za-z0-9._-]/.test(ch)))].map((ch) => JSON.stringify(ch)).join(" ");
    problems.push(`may hold only letters, digits, ".", "_", "-" and placeholders, not ${bad}`);
  }
  if (/^[.-]/.test(pattern)) problems.push('must not start with "." or "-"');
  // Windows cannot open a file whose name before the first dot is a device name (nul.2026-03-02.csv.pgp);
  // no placeholder value has a dot, so that part is the pattern's up to its first dot.
  const stem = pattern.split(".")[0]!;
  if (WINDOWS_RESERVED.test(stem.toLowerCase())) problems.push(`must not start with "${stem}" before the first ".": Windows reserves that name for a device and cannot open the file`);
  const longest = literal.length + [...pattern.matchAll(PLACEHOLDER)].reduce((sum, [, name]) => sum + (isPlaceholder(name!) ? PLACEHOLDER_MAX_LENGTH[name] : 0), 0);
  if (longest + EXTENSIONS_ROOM > MAX_FILE_NAME_BYTES) {
    problems.push(`may expand to ${longest} characters; with the extensions a file name must stay within ${MAX_FILE_NAME_BYTES} (use fewer placeholders)`);
  }
  if (!WINDOW_PLACEHOLDERS.some((p) => used.has(p))) {
    problems.push("must contain {start}, {end}, {startDate}, {endDate} or {runId}, so each window's file has its own name");
  } else if (frequency === "interval" && !INTRADAY_PLACEHOLDERS.some((p) => used.has(p))) {
    problems.push("an interval task has several windows a day: add {startTime} or use {start}");
  }
  return problems;
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
  /** Adds ".pgp" (binary OpenPGP; false for the plain name, to which the deliverer adds ".asc" or ".pgp" as the encryptor staged it). */
  encrypted?: boolean;
  /** The task's `fileNamePattern` (validated when the task was saved); the default name without one. */
  pattern?: string;
  /** For {report} and {runId} in a pattern. */
  reportId?: string;
  runId?: string;
  /**
   * Which of the window's names (see distinctNameTag): 0 (the default) is its plain name, the
   * one every window gets unless another window of the same task already has it.
   */
  variant?: number;
}

/** A report format's file extension, without dot: its letters and digits in lower case. */
function formatExtension(format: string): string {
  return format.toLowerCase().replace(/[^a-z0-9]/g, "");
}

/**
 * `<description slug>_<window start>_<window end>.<format>[.pgp]`, or the task's pattern expanded
 * with the same extensions; safe on Windows, POSIX and in S3/GCS keys either way. A `variant`
 * adds the window's distinctNameTag before the extensions.
 */
export function reportFileName(input: ReportFileNameInput): string {
  const extension = formatExtension(input.format);
  if (extension === "") throw new RangeError(`report format "${input.format}" gives no file extension`);
  const suffix = `.${extension}${input.encrypted === false ? "" : ".pgp"}`;
  const stem = input.pattern
    ? expandPattern(input.pattern, input)
    : `${slugify(input.description)}_${formatWindowInstant(input.windowStart, input.zone)}_${formatWindowInstant(input.windowEnd, input.zone)}`;
  const variant = input.variant ?? 0;
  if (variant === 0) return `${stem}${suffix}`;
  const tag = distinctNameTag(input.windowStart, input.windowEnd, input.zone, variant);
  // Within the 255 bytes a name may have: a long pattern gives up its last characters to the tag.
  return `${stem.slice(0, MAX_FILE_NAME_BYTES - EXTENSIONS_ROOM - tag.length)}${tag}${suffix}`;
}

/**
 * What tells a window's file from another window's of the same task that has the same plain
 * name (a time-zone change, a day a zone skipped or a changed pattern can give two windows one
 * date), added to the name before its extensions. Variant 1 adds the window's start in the zone,
 * with its offset ("daily_2026-01-02_2026-01-01T1600-0800"); 2 its start and end (two windows
 * with one start); 3, 4… those and "-2", "-3"… (windows apart by less than a minute). Derived
 * from the window alone, so a window gets the same name whenever it is named again.
 */
export function distinctNameTag(windowStart: Date, windowEnd: Date, zone: string, variant: number): string {
  if (!Number.isSafeInteger(variant) || variant < 1) throw new RangeError(`file name variant must be a whole number from 1, not ${variant}`);
  const start = `_${formatWindowInstant(windowStart, zone)}`;
  if (variant === 1) return start;
  const both = `${start}_${formatWindowInstant(windowEnd, zone)}`;
  return variant === 2 ? both : `${both}-${variant - 1}`;
}

/** A task's `options.fileNamePattern`, if it has one. */
export function fileNamePatternOf(taskOptions: unknown): string | undefined {
  const pattern = typeof taskOptions === "object" && taskOptions !== null ? (taskOptions as { fileNamePattern?: unknown }).fileNamePattern : undefined;
  return typeof pattern === "string" && pattern !== "" ? pattern : undefined;
}

/** What a task's file names are made of, for fileNameShape. */
export interface FileNameShapeInput {
  description: string;
  reportId: string;
  format: string;
  /** The task's options: `fileNamePattern`, `armor` (.asc or .pgp) and `dateFolders` (YYYY/MM/DD/) shape the path. */
  options?: unknown;
}

/**
 * Each window placeholder as the kind of text it stands for. Boundaries of the same kind share a
 * token: one task's window end is another's start (a-{startDate} and a-{endDate} meet).
 */
const WINDOW_TOKENS: Partial<Record<FileNamePlaceholder, string>> = {
  start: "{instant}", end: "{instant}", startDate: "{date}", endDate: "{date}", startTime: "{time}", endTime: "{time}",
};

/**
 * The path a task's files take in its destination's folder, with the window left symbolic:
 * "daily-export_{instant}_{instant}.csv.pgp". Two tasks delivering to one folder can overwrite each
 * other's files when their shapes are equal. Null when every run gets a name of its own ({runId}).
 * Tokens are in braces, which neither pattern text nor slugs can hold, so they never equal text.
 * Folded to lower case: SFTP servers on Windows and macOS file systems do not tell case apart.
 */
export function fileNameShape(task: FileNameShapeInput): string | null {
  const pattern = fileNamePatternOf(task.options);
  if (pattern?.includes("{runId}")) return null;
  const name = pattern
    ? pattern.replace(PLACEHOLDER, (_, placeholder: FileNamePlaceholder) => {
        if (placeholder === "task") return slugify(task.description);
        if (placeholder === "report") return slugify(task.reportId);
        return (Object.hasOwn(WINDOW_TOKENS, placeholder) ? WINDOW_TOKENS[placeholder] : undefined) ?? `{${placeholder}}`;
      })
    : `${slugify(task.description)}_{instant}_{instant}`;
  const options = (typeof task.options === "object" && task.options !== null ? task.options : {}) as { armor?: unknown; dateFolders?: unknown };
  // As reportFileName and the encryptor write it: the format's extension, then .asc when armored.
  const extension = `.${formatExtension(task.format)}.${options.armor === true ? "asc" : "pgp"}`;
  const folder = options.dateFolders === true ? "{date}/" : "";
  return `${folder}${name}${extension}`.toLowerCase();
}

/**
 * The local time as HHmm ("0200"), with the offset added ("0200+0100") only in the hour a
 * change back from daylight time repeats: two windows starting at the same wall time then still
 * get two names, and every other name keeps the short form.
 */
function wallTime(instant: Date, zone: string): string {
  const local = inZone(instant, zone);
  return local.getPossibleOffsets().length > 1 ? local.toFormat("HHmmZZZ") : local.toFormat("HHmm");
}

function expandPattern(pattern: string, input: ReportFileNameInput): string {
  const problems = validateFileNamePattern(pattern);
  if (problems.length > 0) throw new RangeError(`file name pattern "${pattern}" ${problems.join("; ")}`);
  const local = (instant: Date, format: string) => inZone(instant, input.zone).toFormat(format);
  const values: Record<FileNamePlaceholder, () => string> = {
    task: () => slugify(input.description),
    report: () => slugify(input.reportId ?? "report"),
    start: () => formatWindowInstant(input.windowStart, input.zone),
    end: () => formatWindowInstant(input.windowEnd, input.zone),
    startDate: () => local(input.windowStart, "yyyy-MM-dd"),
    endDate: () => local(input.windowEnd, "yyyy-MM-dd"),
    startTime: () => wallTime(input.windowStart, input.zone),
    endTime: () => wallTime(input.windowEnd, input.zone),
    runId: () => {
      if (!input.runId) throw new RangeError("file name pattern uses {runId} but no run id was given");
      return input.runId;
    },
  };
  // Validated above, so every placeholder is one of ours (never an Object.prototype name).
  return pattern.replace(PLACEHOLDER, (_, name: string) => {
    if (!isPlaceholder(name)) throw new RangeError(`file name pattern "${pattern}" has unknown placeholder {${name}}`);
    return values[name]();
  });
}

/** The optional date folders `YYYY/MM/DD` of a window: the local date its data starts on. */
export function dateSubfolder(windowStart: Date, zone: string): string {
  return inZone(windowStart, zone).toFormat("yyyy/MM/dd");
}
