import { Readable } from "node:stream";

/** Collects a readable into one Buffer (small test payloads only). */
export async function collect(readable: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of readable) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** A readable that yields `buffer` in chunks of `chunkSize`, to exercise real streaming. */
export function chunked(buffer: Buffer, chunkSize = 64 * 1024): Readable {
  return Readable.from(
    (function* () {
      for (let offset = 0; offset < buffer.length; offset += chunkSize) yield buffer.subarray(offset, offset + chunkSize);
    })(),
    { objectMode: false },
  );
}
