import type { Readable } from "node:stream";

/**
 * A keyed blob store for files between pipeline stages (and, with its own root, for managed
 * destination files). Keys are relative paths like `tenants/<t>/runs/<r>/<stage>/<file>`.
 * A reader never sees half an object: put() makes the object visible only once it is complete.
 */
export interface StagingStore {
  /**
   * Writes the whole stream under `key` (replacing any previous object) and reports its size and
   * sha256 hex. When it fails it destroys `body`, so whoever feeds the stream stops too.
   */
  put(key: string, body: Readable): Promise<{ bytes: number; sha256: string }>;
  /** Opens the object for reading; rejects with StorageObjectNotFoundError if it does not exist. */
  get(key: string): Promise<Readable>;
  /** Size of the object, or null if it does not exist. */
  stat(key: string): Promise<{ bytes: number } | null>;
  /** Removes the object; removing a missing object is not an error. */
  delete(key: string): Promise<void>;
  /** Removes every object whose key starts with `prefix`; returns how many were removed. */
  deletePrefix(prefix: string): Promise<number>;
}
