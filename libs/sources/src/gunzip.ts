import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";

/** The compressed bytes could not be decompressed: cut short (`incomplete`) or damaged. */
export class GzipStreamError extends Error {
  override name = "GzipStreamError";
  constructor(
    /** Compressed bytes read when decompression failed. */
    readonly compressedBytes: number,
    readonly incomplete: boolean,
    options?: { cause?: unknown },
  ) {
    super(incomplete ? "gzip stream is incomplete" : "gzip stream is corrupt", options);
  }
}

const isZlibError = (error: unknown): boolean => typeof (error as { code?: unknown })?.code === "string" && (error as { code: string }).code.startsWith("Z_");

/**
 * The bytes of `body`, decompressed as they arrive when they start with gzip's magic number and
 * passed through as they are otherwise. Only a window of the stream is in memory at any time.
 * Decompression failures are `GzipStreamError`s; the body's own errors pass through unchanged.
 * Ending early (return or a failure) destroys `body`.
 */
export async function* gunzipIfGzip(body: Readable): AsyncGenerator<Buffer> {
  const chunks = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let compressedBytes = 0;
  try {
    // Two bytes decide, and the first chunk may be shorter than that.
    let head = Buffer.alloc(0);
    while (head.length < 2) {
      const next = await chunks.next();
      if (next.done) break;
      head = Buffer.concat([head, next.value]);
    }
    async function* compressed(): AsyncGenerator<Buffer> {
      compressedBytes += head.length;
      if (head.length > 0) yield head;
      for (let next = await chunks.next(); !next.done; next = await chunks.next()) {
        compressedBytes += next.value.length;
        yield next.value;
      }
    }
    if (head[0] !== 0x1f || head[1] !== 0x8b) {
      yield* compressed();
      return;
    }
    const gunzip = createGunzip();
    // Failures on either side surface through `gunzip`, which the pipeline destroys with them.
    pipeline(compressed(), gunzip).catch(() => {});
    try {
      for await (const chunk of gunzip) yield chunk as Buffer;
    } catch (error) {
      if (isZlibError(error)) throw new GzipStreamError(compressedBytes, (error as { code: string }).code === "Z_BUF_ERROR", { cause: error });
      throw error;
    } finally {
      gunzip.destroy();
    }
  } finally {
    body.destroy();
  }
}
