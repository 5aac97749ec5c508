import { BACKSLASH, CLOSE_ARRAY, CLOSE_OBJECT, isSpace, OPEN_ARRAY, OPEN_OBJECT, QUOTE } from "./json-bytes.js";

/**
 * The layout of one page of a search API (`{"_metadata": {...}, "<records>": [{...}, ...]}`),
 * read straight from the response bytes in one validating pass: where each record starts and
 * ends, where its `info` object is, and where `_metadata` is. The fetcher stores records as
 * received, so it needs their bytes, their `info` (time and id, to window and de-duplicate), the
 * next-page link and the result count — not every record decoded into a string and parsed into
 * objects, which were the largest costs of fetching.
 *
 * The pass checks the whole page against the JSON grammar (strings and their escapes, numbers,
 * literals, nesting, one top-level value), so a page it accepts is one JSON.parse accepts. Any
 * problem, or a page not of this shape, returns null: the caller then parses it the ordinary way,
 * which names the problem and its byte offset. Working on UTF-8 bytes is exact: every character
 * the grammar looks at is ASCII and never occurs inside a multi-byte sequence.
 */
export interface SearchPageLayout {
  /** Byte ranges [start, end) of each record (an object) in the records array, in order. */
  recordStarts: number[];
  recordEnds: number[];
  /** Byte range of each record's `info` object, or -1 when it has none. */
  infoStarts: number[];
  infoEnds: number[];
  /** Whether the records key was present at the top level (absent: no records). */
  hasRecords: boolean;
  /** Byte range of the top-level `_metadata` object, or -1. */
  metadataStart: number;
  metadataEnd: number;
  /**
   * `_metadata.count` (the size of the whole result set, which paging checks stays put) when it
   * is a number, else null.
   */
  count: number | null;
}

const COLON = 0x3a;
const COMMA = 0x2c;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;
/** Deeper than any platform record; a deeper page takes the ordinary path. */
const MAX_DEPTH = 256;

const enum Key {
  None,
  Records,
  Metadata,
  Info,
  /** `count` in the top-level `_metadata`. */
  Count,
}

/** What the grammar allows next. */
const enum Expect {
  Value,
  /** A value or `]`: just after `[`. */
  ValueOrClose,
  /** A member name or `}`: just after `{`. */
  NameOrClose,
  /** A member name: after a `,` in an object. */
  Name,
  /** `,` or the closing bracket, or the end of input at depth 0. */
  Next,
}

function isHex(c: number): boolean {
  return (c >= ZERO && c <= NINE) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** Index just past the valid string whose opening quote is at `start`, or -1. */
function scanString(b: Buffer, start: number): number {
  const n = b.length;
  for (let i = start + 1; i < n; i++) {
    const c = b[i]!;
    if (c === QUOTE) return i + 1;
    if (c < 0x20) return -1; // control characters must be escaped
    if (c === BACKSLASH) {
      const e = b[++i];
      if (e === 0x75 /* u */) {
        if (i + 4 >= n || !isHex(b[i + 1]!) || !isHex(b[i + 2]!) || !isHex(b[i + 3]!) || !isHex(b[i + 4]!)) return -1;
        i += 4;
      } else if (e !== QUOTE && e !== BACKSLASH && e !== 0x2f && e !== 0x62 && e !== 0x66 && e !== 0x6e && e !== 0x72 && e !== 0x74) {
        return -1;
      }
    }
  }
  return -1;
}

function digitsFrom(b: Buffer, i: number): number {
  while (i < b.length && b[i]! >= ZERO && b[i]! <= NINE) i++;
  return i;
}

/** Index just past the valid number starting at `start`, or -1. */
function scanNumber(b: Buffer, start: number): number {
  let i = start;
  if (b[i] === MINUS) i++;
  if (b[i] === ZERO) i++;
  else if (b[i]! >= 0x31 && b[i]! <= NINE) i = digitsFrom(b, i + 1);
  else return -1;
  if (b[i] === 0x2e /* . */) {
    const j = digitsFrom(b, i + 1);
    if (j === i + 1) return -1;
    i = j;
  }
  if (b[i] === 0x65 || b[i] === 0x45 /* e E */) {
    i++;
    if (b[i] === 0x2b || b[i] === MINUS) i++;
    const j = digitsFrom(b, i);
    if (j === i) return -1;
    i = j;
  }
  return i;
}

const LITERALS: Record<number, Buffer> = { 0x74: Buffer.from("true"), 0x66: Buffer.from("false"), 0x6e: Buffer.from("null") };

function sameBytes(b: Buffer, start: number, end: number, expected: Buffer): boolean {
  if (end - start !== expected.length) return false;
  for (let k = 0; k < expected.length; k++) if (b[start + k] !== expected[k]) return false;
  return true;
}

const METADATA_KEY = Buffer.from('"_metadata"');
const INFO_KEY = Buffer.from('"info"');
const COUNT_KEY = Buffer.from('"count"');

/** Whether the member name at [start, end) is written with escapes and decodes to one of `names`. */
function escapedNameIsOneOf(b: Buffer, start: number, end: number, names: readonly string[]): boolean {
  let escaped = false;
  for (let k = start + 1; k < end - 1 && !escaped; k++) escaped = b[k] === BACKSLASH;
  if (!escaped) return false;
  return names.includes(JSON.parse(b.toString("utf8", start, end)) as string);
}

const METADATA_NAMES_READ = ["count"];

/** The page's layout, or null when it is not valid JSON of that shape (parse it instead). */
export function scanSearchPage(b: Buffer, recordsKey: string): SearchPageLayout | null {
  const recordsKeyBytes = Buffer.from(JSON.stringify(recordsKey));
  const namesRead = [recordsKey, "_metadata", "info"];
  const layout: SearchPageLayout = { recordStarts: [], recordEnds: [], infoStarts: [], infoEnds: [], hasRecords: false, metadataStart: -1, metadataEnd: -1, count: null };
  const open = new Uint8Array(MAX_DEPTH);
  const n = b.length;
  let depth = 0;
  let expect = Expect.Value;
  /** The member whose value comes next, when it is one we care about. */
  let pending = Key.None;
  /** Depth inside the records array (2) while in it, else -1. */
  let recordsDepth = -1;
  let recordStart = -1;
  let infoStart = -1;
  let infoEnd = -1;
  let i = 0;
  for (;;) {
    while (i < n && isSpace(b[i]!)) i++;
    if (i >= n) return null; // ended inside a value: truncated (or empty)
    const c = b[i]!;

    if (expect === Expect.Next) {
      if (c === COMMA) {
        expect = open[depth - 1] === OPEN_OBJECT ? Expect.Name : Expect.Value;
        i++;
        continue;
      }
      if (c !== CLOSE_OBJECT && c !== CLOSE_ARRAY) return null;
      // fall through to the closing bracket below
    } else if (expect === Expect.Name || expect === Expect.NameOrClose) {
      if (c === QUOTE) {
        const end = scanString(b, i);
        if (end < 0) return null;
        let j = end;
        while (j < n && isSpace(b[j]!)) j++;
        if (b[j] !== COLON) return null;
        // A member of the top-level object, directly of a record, or of `_metadata` (its
        // `count`): one we want? JSON.parse keeps the last of duplicate names and decodes escapes
        // in them; rather than follow it there, a page with either (at a level read here) takes
        // the ordinary path — except a repeated `count`, a scalar, whose last value is kept here too.
        const inMetadata = depth === 2 && layout.metadataStart >= 0 && layout.metadataEnd < 0;
        if ((depth === 1 || (depth === recordsDepth + 1 && recordsDepth > 0)) && escapedNameIsOneOf(b, i, end, namesRead)) return null;
        if (inMetadata && escapedNameIsOneOf(b, i, end, METADATA_NAMES_READ)) return null;
        if (depth === 1) {
          pending = sameBytes(b, i, end, recordsKeyBytes) ? Key.Records : sameBytes(b, i, end, METADATA_KEY) ? Key.Metadata : Key.None;
          if ((pending === Key.Records && layout.hasRecords) || (pending === Key.Metadata && layout.metadataStart >= 0)) return null;
        } else if (depth === recordsDepth + 1 && recordsDepth > 0) {
          pending = sameBytes(b, i, end, INFO_KEY) ? Key.Info : Key.None;
          if (pending === Key.Info && infoStart >= 0) return null;
        } else if (inMetadata && sameBytes(b, i, end, COUNT_KEY)) {
          // The last `count` decides, as in JSON.parse: none until its value is read as a number.
          pending = Key.Count;
          layout.count = null;
        } else pending = Key.None;
        expect = Expect.Value;
        i = j + 1;
        continue;
      }
      if (c !== CLOSE_OBJECT || expect === Expect.Name) return null;
      // `{}`: fall through to the closing bracket below
    } else {
      // A value (or `]` right after `[`).
      // An `info` or `_metadata` that is not an object: the ordinary path decides what it means
      // (read here as "none", it would differ from what the parsed page holds).
      if ((pending === Key.Info || pending === Key.Metadata) && c !== OPEN_OBJECT) return null;
      if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
        if (depth >= MAX_DEPTH) return null;
        if (pending === Key.Records) {
          if (c !== OPEN_ARRAY) return null; // records is not a list
          layout.hasRecords = true;
          recordsDepth = depth + 1;
        } else if (pending === Key.Metadata) {
          layout.metadataStart = i;
        } else if (pending === Key.Info) {
          infoStart = i;
        } else if (depth === recordsDepth) {
          if (c !== OPEN_OBJECT) return null; // records are objects
          recordStart = i;
        }
        pending = Key.None;
        open[depth++] = c;
        expect = c === OPEN_OBJECT ? Expect.NameOrClose : Expect.ValueOrClose;
        i++;
        continue;
      }
      if (c === CLOSE_ARRAY && expect === Expect.ValueOrClose) {
        // `[]`: fall through to the closing bracket below
      } else {
        // A scalar: where a record or the records list belongs, this is not a page of records.
        if (depth === recordsDepth || pending === Key.Records) return null;
        let end: number;
        if (c === QUOTE) end = scanString(b, i);
        else if (c === MINUS || (c >= ZERO && c <= NINE)) end = scanNumber(b, i);
        else {
          const literal = LITERALS[c];
          end = literal && sameBytes(b, i, Math.min(n, i + literal.length), literal) ? i + literal.length : -1;
        }
        if (end < 0) return null;
        if (pending === Key.Count && c !== QUOTE && LITERALS[c] === undefined) layout.count = Number(b.toString("latin1", i, end));
        pending = Key.None;
        expect = Expect.Next;
        i = end;
        if (depth === 0) break;
        continue;
      }
    }

    // A closing bracket where the grammar allows one: it must match its opener.
    if (depth === 0 || open[depth - 1] !== (c === CLOSE_OBJECT ? OPEN_OBJECT : OPEN_ARRAY)) return null;
    depth--;
    if (depth === 1 && c === CLOSE_OBJECT && layout.metadataStart >= 0 && layout.metadataEnd < 0) layout.metadataEnd = i + 1;
    if (infoStart >= 0 && infoEnd < 0 && depth === recordsDepth + 1) infoEnd = i + 1;
    if (depth === recordsDepth) {
      layout.recordStarts.push(recordStart);
      layout.recordEnds.push(i + 1);
      layout.infoStarts.push(infoStart);
      layout.infoEnds.push(infoEnd);
      recordStart = infoStart = infoEnd = -1;
    } else if (depth === recordsDepth - 1) {
      recordsDepth = -1;
    }
    expect = Expect.Next;
    i++;
    if (depth === 0) break;
  }
  // One top-level object and nothing after it.
  while (i < n && isSpace(b[i]!)) i++;
  return i === n && open[0] === OPEN_OBJECT ? layout : null;
}
