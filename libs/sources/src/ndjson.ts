import type { SourceRecord } from "./connectors/types.js";
import { rawJsonOf } from "./raw-json.js";

/**
 * Records as NDJSON text in chunks of about `chunkBytes` (one write per chunk rather than one
 * per record), for a stream into the staging store. `onRecord` counts as they pass.
 */
export async function* ndjsonChunks(records: AsyncIterable<SourceRecord>, onRecord: () => void = () => {}, chunkBytes = 64 * 1024): AsyncGenerator<string> {
  let buffer = "";
  for await (const record of records) {
    // The record's text as received when it is one line; otherwise serialised here.
    buffer += (rawJsonOf(record) ?? JSON.stringify(record)) + "\n";
    onRecord();
    if (buffer.length >= chunkBytes) {
      yield buffer;
      buffer = "";
    }
  }
  if (buffer.length > 0) yield buffer;
}
