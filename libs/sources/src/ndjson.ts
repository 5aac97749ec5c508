import type { SourceRecord } from "./connectors/types.js";
import { rawJsonOf } from "./raw-json.js";

const NEWLINE = Buffer.from("\n");

/**
 * Records as NDJSON in chunks of about `chunkBytes` (one write per chunk rather than one per
 * record), for a stream into the staging store. A record that arrived with its own JSON is written
 * as received (line breaks between its tokens as spaces, `rawJsonOf`); others are serialised
 * here. `onRecord` counts as they pass.
 */
export async function* ndjsonChunks(records: AsyncIterable<SourceRecord>, onRecord: () => void = () => {}, chunkBytes = 256 * 1024): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let size = 0;
  for await (const record of records) {
    const raw = rawJsonOf(record) ?? JSON.stringify(record);
    const bytes = typeof raw === "string" ? Buffer.from(raw) : raw;
    parts.push(bytes, NEWLINE);
    size += bytes.length + 1;
    onRecord();
    if (size >= chunkBytes) {
      yield Buffer.concat(parts, size);
      parts = [];
      size = 0;
    }
  }
  if (size > 0) yield Buffer.concat(parts, size);
}
