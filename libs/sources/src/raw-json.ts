/**
 * The exact JSON text a record arrived as, kept beside the parsed record so the fetcher can write
 * it to NDJSON without serialising the object again (JSON.stringify was the largest cost of the
 * fetch path after parsing). Not enumerable: invisible to JSON.stringify, spreads and equality.
 */
export const RAW_JSON: unique symbol = Symbol.for("transporter.sources.rawJson") as never;

export function attachRawJson(record: object, raw: string): void {
  Object.defineProperty(record, RAW_JSON, { value: raw, enumerable: false, configurable: true });
}

/** The record's original JSON text when it is one line (NDJSON-safe), else null. */
export function rawJsonOf(record: object): string | null {
  const raw = (record as { [RAW_JSON]?: unknown })[RAW_JSON];
  if (typeof raw !== "string") return null;
  return raw.indexOf("\n") === -1 && raw.indexOf("\r") === -1 ? raw : null;
}

/**
 * [start, end) of each element of the array under `key` in the top-level object of `text`
 * (e.g. "conversationHistoryRecords"), found with one pass that tracks strings and nesting.
 * Null when the key is not found as a top-level array.
 */
export function topLevelArrayElements(text: string, key: string): Array<[number, number]> | null {
  const quotedKey = JSON.stringify(key);
  let depth = 0;
  let i = 0;
  const n = text.length;
  // Find `"key"` as a member name of the top-level object, then its `[`.
  let arrayStart = -1;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      const end = skipString(text, i);
      if (depth === 1 && end - i === quotedKey.length && text.startsWith(quotedKey, i)) {
        let j = end;
        while (j < n && isSpace(text.charCodeAt(j))) j++;
        if (text.charCodeAt(j) === 58 /* : */) {
          j++;
          while (j < n && isSpace(text.charCodeAt(j))) j++;
          if (text.charCodeAt(j) !== 91 /* [ */) return null;
          arrayStart = j;
          break;
        }
      }
      i = end;
      continue;
    }
    if (c === 123 || c === 91) depth++;
    else if (c === 125 || c === 93) depth--;
    i++;
  }
  if (arrayStart < 0) return null;
  const out: Array<[number, number]> = [];
  i = arrayStart + 1;
  depth = 0;
  let elementStart = -1;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      if (depth === 0 && elementStart < 0) elementStart = i;
      i = skipString(text, i);
      if (depth === 0) {
        // A bare string element ends here.
        out.push([elementStart, i]);
        elementStart = -1;
      }
      continue;
    }
    if (c === 123 || c === 91) {
      if (depth === 0) elementStart = i;
      depth++;
    } else if (c === 125 || c === 93) {
      if (depth === 0) return out; // the array's own `]`
      depth--;
      if (depth === 0) {
        out.push([elementStart, i + 1]);
        elementStart = -1;
      }
    } else if (depth === 0 && c !== 44 && !isSpace(c)) {
      return null; // numbers or literals as elements: not records
    }
    i++;
  }
  return null;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}

/** Index just past the string starting at `start` (a `"`). */
function skipString(text: string, start: number): number {
  let i = start + 1;
  for (;;) {
    const q = text.indexOf('"', i);
    if (q < 0) return text.length;
    // Count the backslashes before the quote: an odd number escapes it.
    let b = q - 1;
    while (b >= start + 1 && text.charCodeAt(b) === 92) b--;
    if ((q - 1 - b) % 2 === 0) return q + 1;
    i = q + 1;
  }
}
