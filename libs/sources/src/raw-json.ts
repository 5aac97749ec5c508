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
 * arrived without any. Usually the bytes untouched; a record that arrived over several lines
 * (a pretty-printed response: the line breaks can only be whitespace between tokens) is parsed
 * and written again on one line. Never the parsed object alone: a record read as received
 * carries only the fields windowing needs, its content is in these bytes.
 */
export function rawJsonOf(record: object): string | Buffer | null {
  const raw = (record as { [RAW_JSON]?: unknown })[RAW_JSON];
  if (typeof raw === "string") return raw.indexOf("\n") === -1 && raw.indexOf("\r") === -1 ? raw : JSON.stringify(JSON.parse(raw));
  if (Buffer.isBuffer(raw)) return raw.indexOf(0x0a) === -1 && raw.indexOf(0x0d) === -1 ? raw : JSON.stringify(JSON.parse(raw.toString("utf8")));
  return null;
}
