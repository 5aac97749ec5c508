import { Readable } from "node:stream";
import type { SourceApi } from "./apis.js";
import { SourceError } from "./errors.js";

export interface BodyStreamOptions {
  api: SourceApi;
  /** Longest wait for the next bytes; the transfer as a whole may take as long as it needs. */
  idleMs: number;
  /** Aborts the request: on an idle body, and when the reader stops early. */
  abort: AbortController;
  /** The caller's own cancellation: its reason is passed on unchanged. */
  signal?: AbortSignal;
}

/**
 * A response body as a Node stream that reads from the network only as fast as it is consumed.
 * Waiting longer than `idleMs` for bytes aborts the request; that and a broken connection become
 * `upstream_unavailable` (the request cannot be replayed here: part of the body was read).
 * Destroying the stream aborts the request.
 */
export function bodyStream(body: ReadableStream<Uint8Array> | null, options: BodyStreamOptions): Readable {
  if (!body) return Readable.from([], { objectMode: false });
  const reader = body.getReader();
  let received = 0;
  let finished = false;
  let idle = false;
  let timer: NodeJS.Timeout | undefined;

  const failure = (error: unknown): unknown => {
    if (options.signal?.aborted) return options.signal.reason;
    if (idle) return new SourceError("upstream_unavailable", `The platform's ${options.api} API stopped sending: no data for ${options.idleMs} ms after ${received} bytes of the body`, { api: options.api });
    return new SourceError("upstream_unavailable", `The platform's ${options.api} API broke off the body after ${received} bytes (${(error as Error).message})`, { api: options.api }, { cause: error });
  };

  return new Readable({
    read() {
      timer = setTimeout(() => {
        idle = true;
        options.abort.abort();
      }, options.idleMs);
      reader.read().then(
        (next) => {
          clearTimeout(timer);
          if (next.done) {
            finished = true;
            this.push(null);
            return;
          }
          received += next.value.byteLength;
          this.push(Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength));
        },
        (error: unknown) => {
          clearTimeout(timer);
          this.destroy(failure(error) as Error);
        },
      );
    },
    destroy(error, callback) {
      clearTimeout(timer);
      if (!finished) {
        options.abort.abort();
        reader.cancel().catch(() => {});
      }
      callback(error);
    },
  });
}
