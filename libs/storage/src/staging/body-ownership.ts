import type { Readable } from "node:stream";

/**
 * Runs a store's write of `body` and destroys `body` if the write fails. A write can fail before
 * it reads anything (the folder cannot be made, the upload is refused), and then nothing would
 * ever read or end the stream: whoever feeds it would wait on backpressure forever (a transform
 * blocked mid-file, its job's lock renewed, the run never finishing). Destroyed without an error,
 * so a body nobody listens to for errors cannot crash the process; its producer sees the stream
 * close early and stops, and the caller learns why from the write's own rejection.
 */
export async function destroyBodyOnFailure<T>(body: Readable, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    body.destroy();
    throw error;
  }
}
