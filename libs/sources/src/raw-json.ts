/**
 * The exact JSON a record arrived as (text, or the UTF-8 bytes of the response), kept beside the
 * parsed record so the fetcher can write it to NDJSON without serialising the object again.
 * Not enumerable: invisible to JSON.stringify, spreads and equality.
 */
export const RAW_JSON: unique symbol = Symbol.for("transporter.sources.rawJson") as never;

export function attachRawJson(record: object, raw: string | Buffer): void {
  Object.defineProperty(record, RAW_JSON, { value: raw, enumerable: false, configurable: true });
}

/**
 * The record as one line of JSON (NDJSON-safe) from the JSON it arrived as, or null when it
 * arrived without any. Usually the bytes untouched; a record that arrived over several lines (a
 * pretty-printed response) has each CR and LF turned into a space. In valid JSON they can only be
 * whitespace between tokens (inside strings they are escaped), so the line is still the record
 * exactly as received: parsing and serialising it again would round big integers, respell numbers
 * (10.50 as 10.5) and change escapes. Validity is the producer's: the search page scanner and the
 * document splitter attach only JSON they have checked. Never the parsed object alone: a record
 * read as received carries only the fields windowing needs, its content is in these bytes.
 */
export function rawJsonOf(record: object): string | Buffer | null {
  const raw = (record as { [RAW_JSON]?: unknown })[RAW_JSON];
  if (typeof raw === "string") return raw.indexOf("\n") === -1 && raw.indexOf("\r") === -1 ? raw : raw.replace(/[\r\n]/g, " ");
  if (Buffer.isBuffer(raw)) return raw.indexOf(0x0a) === -1 && raw.indexOf(0x0d) === -1 ? raw : oneLine(raw);
  return null;
}

/** A copy of `raw` with CR and LF as spaces (the response buffer it was cut from stays as it came). */
function oneLine(raw: Buffer): Buffer {
  const line = Buffer.from(raw);
  // UTF-8 never has 0x0A or 0x0D inside a multi-byte character: replacing bytes is exact.
  for (let i = line.indexOf(0x0a); i !== -1; i = line.indexOf(0x0a, i + 1)) line[i] = 0x20;
  for (let i = line.indexOf(0x0d); i !== -1; i = line.indexOf(0x0d, i + 1)) line[i] = 0x20;
  return line;
}
