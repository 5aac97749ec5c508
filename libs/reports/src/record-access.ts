import { isWritableInstant, parsePlatformTime, readPlatformInstant } from "@transporter/sources/apis";
import { MalformedRecordError } from "./errors.js";

/**
 * Typed reads of source records. Definitions flatten nested fields through these helpers,
 * so a missing required field or a wrong type becomes a MalformedRecordError naming the
 * field's path. Paths are only built when something is wrong: the happy path allocates nothing.
 */
export type Json = Record<string, unknown>;

function at(base: string, key: string | number): string {
  if (typeof key === "number") return `${base}[${key}]`;
  return base ? `${base}.${key}` : key;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

export function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The value must be a JSON object. */
export function object(value: unknown, path: string): Json {
  if (!isObject(value)) throw new MalformedRecordError(path, `expected an object, got ${describe(value)}`);
  return value;
}

export function requiredObject(o: Json, key: string, base = ""): Json {
  const v = o[key];
  if (!isObject(v)) throw new MalformedRecordError(at(base, key), v === undefined ? "missing" : `expected an object, got ${describe(v)}`);
  return v;
}

export function optionalObject(o: Json, key: string, base = ""): Json | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw new MalformedRecordError(at(base, key), `expected an object, got ${describe(v)}`);
  return v;
}

export function optionalArray(o: Json, key: string, base = ""): unknown[] {
  const v = o[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new MalformedRecordError(at(base, key), `expected an array, got ${describe(v)}`);
  return v;
}

export function requiredString(o: Json, key: string, base = ""): string {
  const v = o[key];
  if (typeof v === "string" && v.length > 0) return v;
  throw new MalformedRecordError(at(base, key), v === undefined ? "missing" : v === "" ? "empty" : `expected a string, got ${describe(v)}`);
}

/**
 * A value the platform fills in (a device, a channel, a skill or agent name): it writes the
 * literal "undefined" or "null" when it has none, so those mean absent. Text a person typed is
 * read with `optionalText` instead.
 */
export function optionalString(o: Json, key: string, base = ""): string | null {
  const v = o[key];
  if (v === "undefined" || v === "null") return null;
  return optionalText(o, key, base);
}

/** Text a person typed (a message, a summary, a survey answer, a name): kept as typed, "null" included. */
export function optionalText(o: Json, key: string, base = ""): string | null {
  const v = o[key];
  if (v === undefined || v === null) return null;
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  throw new MalformedRecordError(at(base, key), `expected a string, got ${describe(v)}`);
}

/**
 * A number id as text. JSON.parse has already rounded a number beyond 2^53 (12345678901234567890
 * reads as 12345678901234567000), so only whole numbers a double holds exactly are ids: anything
 * else would be written as a different id with the record counted good.
 */
export function numberId(v: number, path: string): string {
  if (Number.isSafeInteger(v)) return String(v);
  throw new MalformedRecordError(path, `expected an id (text, or a whole number of at most ${Number.MAX_SAFE_INTEGER}), got ${v}`);
}

/** Identifiers arrive as numbers in some APIs and strings in others; reports carry them as text. */
export function requiredId(o: Json, key: string, base = ""): string {
  const v = o[key];
  if (typeof v === "string" && v.length > 0) return v;
  if (typeof v === "number") return numberId(v, at(base, key));
  throw new MalformedRecordError(at(base, key), v === undefined ? "missing" : `expected an id, got ${describe(v)}`);
}

export function optionalId(o: Json, key: string, base = ""): string | null {
  const v = o[key];
  if (v === undefined || v === null || v === "" || v === "undefined" || v === "null") return null;
  if (typeof v === "string") return v;
  if (typeof v === "number") return numberId(v, at(base, key));
  throw new MalformedRecordError(at(base, key), `expected an id, got ${describe(v)}`);
}

export function requiredNumber(o: Json, key: string, base = ""): number {
  const v = o[key];
  if (typeof v === "number" && Number.isFinite(v)) return v;
  throw new MalformedRecordError(at(base, key), v === undefined ? "missing" : `expected a number, got ${describe(v)}`);
}

export function optionalNumber(o: Json, key: string, base = ""): number | null {
  const v = o[key];
  if (v === undefined || v === null) return null;
  if (typeof v === "number" && Number.isFinite(v)) return v;
  throw new MalformedRecordError(at(base, key), `expected a number, got ${describe(v)}`);
}

export function optionalBoolean(o: Json, key: string, base = ""): boolean | null {
  const v = o[key];
  if (v === undefined || v === null) return null;
  if (typeof v === "boolean") return v;
  throw new MalformedRecordError(at(base, key), `expected a boolean, got ${describe(v)}`);
}

// The platform's text times are read by the same parser the fetcher windows records with.
export { parsePlatformTime };

export { isWritableInstant };

/**
 * An instant given as epoch ms in `msKey` (e.g. `startTimeL`) or as platform text in `textKey`
 * (e.g. `startTime`), as `readPlatformInstant` reads it (the fetcher windows records by the same
 * reading); null when the record gives none.
 */
export function optionalInstant(o: Json, msKey: string, textKey: string | null, base = ""): number | null {
  const reading = readPlatformInstant(o, msKey, textKey);
  if ("problem" in reading) throw new MalformedRecordError(at(base, reading.problem.key), reading.problem.message);
  return "ms" in reading ? reading.ms : null;
}

export function requiredInstant(o: Json, msKey: string, textKey: string | null, base = ""): number {
  const v = optionalInstant(o, msKey, textKey, base);
  if (v === null) throw new MalformedRecordError(at(base, msKey), "missing");
  return v;
}

/** Element `i` of an array as an object, with its path for errors. */
export function element(list: unknown[], i: number, base: string): Json {
  const v = list[i];
  if (!isObject(v)) throw new MalformedRecordError(at(base, i), `expected an object, got ${describe(v)}`);
  return v;
}
