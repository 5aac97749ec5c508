/**
 * The exact JSON a record arrived as (text, or the UTF-8 bytes of the response), kept beside the
 * parsed record so the fetcher can write it to NDJSON without serialising the object again.
 * Not enumerable: invisible to JSON.stringify, spreads and equality.
 */
export const RAW_JSON: unique symbol = Symbol.for("transporter.sources.rawJson") as never;

export function attachRawJson(record: object, raw: string | Buffer): void {
  Object.defineProperty(record, RAW_JSON, { value: raw, enumerable: false, configurable: true });
}

/** The record's original JSON when it is one line (NDJSON-safe), else null. */
export function rawJsonOf(record: object): string | Buffer | null {
  const raw = (record as { [RAW_JSON]?: unknown })[RAW_JSON];
  if (typeof raw === "string") return raw.indexOf("\n") === -1 && raw.indexOf("\r") === -1 ? raw : null;
  if (Buffer.isBuffer(raw)) return raw.indexOf(0x0a) === -1 && raw.indexOf(0x0d) === -1 ? raw : null;
  return null;
}
