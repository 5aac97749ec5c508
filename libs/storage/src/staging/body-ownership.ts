import { finished, type Readable } from "node:stream";

/**
 * Runs a store's write of `body` and destroys `body` if the write fails. A write can fail before
 * it reads anything (the folder cannot be made, the upload is refused), and then nothing would
 * ever read or end the stream: whoever feeds it would wait on backpressure forever (a transform
 * blocked mid-file, its job's lock renewed, the run never finishing). Destroyed without an error,
 * so a body nobody listens to for errors cannot crash the process; its producer sees the stream
 * close early and stops, and the caller learns why from the write's own rejection.
 */
export async function destroyBodyOnFailure<T>(body: Readable, write: () => Promise<T>): Promise<T> {
  // A body can fail before the write reads it (while a folder is made or a file opened): with
  // no listener yet, its 'error' would be an uncaught exception that ends the process. The write
  // still learns of it: a pipeline over an errored stream rejects with its error.
  body.on("error", () => undefined);
  try {
    return await write();
  } catch (error) {
    body.destroy();
    throw error;
  }
}

/**
 * Watches a body a destination uploads through pipe(), which passes on neither its error nor a
 * close before its end (a plain destroy(): whoever feeds it stopping it): `cut` hears of both,
 * so the upload can be failed instead of waiting for the rest for ever. `stop()` destroys the
 * body without that counting as a cut (the destination failed first, and says why).
 */
export function watchSource(body: Readable, cut: (error: Error) => void): { stop(): void } {
  let stopped = false;
  finished(body, (error) => {
    if (error && !stopped) cut(error);
  });
  return {
    stop() {
      stopped = true;
      body.destroy();
    },
  };
}
