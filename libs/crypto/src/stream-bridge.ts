import { Readable } from "node:stream";

/**
 * Bridges between Node streams and the WHATWG streams openpgp.js works with. Both directions are
 * pull-based with no internal queue (highWaterMark 0), so at most one chunk is in flight per hop.
 * Node 20's own bridges (`Readable.toWeb`, and the Compression/DecompressionStream built on the
 * same adapters) let a fast producer run far ahead of a slow consumer — we measured hundreds of
 * MB held for one large file — which breaks "memory stays flat whatever the file size".
 */
export function webFromChunks<T extends Uint8Array | string>(chunks: AsyncIterator<T>, onCancel?: (reason: unknown) => void): ReadableStream<T> {
  return new ReadableStream<T>(
    {
      async pull(controller) {
        try {
          const next = await chunks.next();
          if (next.done) controller.close();
          else controller.enqueue(next.value);
        } catch (error) {
          controller.error(error);
        }
      },
      async cancel(reason) {
        onCancel?.(reason);
        await chunks.return?.();
      },
    },
    { highWaterMark: 0 },
  );
}

/** A web stream reading from a Node readable; cancelling it destroys the readable. */
export function webFromNode(readable: Readable): ReadableStream<Uint8Array> {
  return webFromChunks(readable[Symbol.asyncIterator](), () => readable.destroy());
}

function toBytes(chunk: Uint8Array | string): Uint8Array {
  if (typeof chunk === "string") return Buffer.from(chunk, "utf8");
  return chunk;
}

/** Reads a web stream chunk by chunk as Buffers; stopping early cancels the web stream. */
export async function* chunksOfWeb(stream: ReadableStream<Uint8Array | string>): AsyncGenerator<Buffer> {
  const reader = stream.getReader();
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        finished = true;
        return;
      }
      const bytes = toBytes(value);
      if (bytes.byteLength > 0) yield Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
  } finally {
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

/** A Node readable over an async generator of Buffers (pulled on demand, so backpressure holds). */
export function nodeFromChunks(chunks: AsyncIterable<Buffer>): Readable {
  return Readable.from(chunks, { objectMode: false, highWaterMark: 64 * 1024 });
}
