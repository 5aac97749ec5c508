import { randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readdir, rename, rm, rmdir, stat, unlink } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { StorageObjectNotFoundError } from "../errors.js";
import { destroyBodyOnFailure } from "./body-ownership.js";
import { assertValidKey, assertValidPrefix } from "./keys.js";
import { MeasuringStream } from "./measure.js";
import type { StagingStore } from "./types.js";

/** Temporary files carry this marker so listings and deletePrefix counts skip them. */
const TEMP_MARKER = ".partial-";

/** Reads in 256 KiB pieces: a quarter as many file reads (each a round trip to libuv's thread pool) as Node's 64 KiB default. */
const READ_CHUNK_BYTES = 256 * 1024;

/**
 * Staging on the local file system (one machine). put() writes to a temporary file in the
 * target folder and renames it into place, so a concurrent reader sees the old object or the
 * new one, never half of one.
 */
export class FsStagingStore implements StagingStore {
  readonly rootDir: string;

  constructor(rootDir: string) {
    this.rootDir = path.resolve(rootDir);
  }

  private pathOf(key: string): string {
    const resolved = path.resolve(this.rootDir, assertValidKey(key));
    // assertValidKey already rules out "..", this is the belt to its braces.
    if (!resolved.startsWith(this.rootDir + path.sep)) throw new Error(`key escapes the store root: ${key}`);
    return resolved;
  }

  put(key: string, body: Readable): Promise<{ bytes: number; sha256: string }> {
    return destroyBodyOnFailure(body, async () => {
      const target = this.pathOf(key);
      const temp = `${path.dirname(target)}/${TEMP_MARKER}${randomUUID()}`;
      const handle = await createTempFile(temp);
      const measure = new MeasuringStream();
      try {
        await pipeline(body, measure, handle.createWriteStream());
        await rename(temp, target);
      } catch (error) {
        await rm(temp, { force: true });
        throw error;
      }
      return { bytes: measure.bytes, sha256: measure.sha256() };
    });
  }

  async get(key: string): Promise<Readable> {
    const file = this.pathOf(key);
    // Open before returning so a missing object is a rejected promise, not a stream error later.
    const stream = createReadStream(file, { highWaterMark: READ_CHUNK_BYTES });
    await new Promise<void>((resolve, reject) => {
      stream.once("open", () => resolve());
      stream.once("error", (error: NodeJS.ErrnoException) => {
        reject(error.code === "ENOENT" || error.code === "EISDIR" ? new StorageObjectNotFoundError(key) : error);
      });
    });
    return stream;
  }

  async stat(key: string): Promise<{ bytes: number } | null> {
    try {
      const info = await stat(this.pathOf(key));
      return info.isFile() ? { bytes: info.size } : null;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    const file = this.pathOf(key);
    try {
      await unlink(file);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT") return;
      if (code === "EISDIR" || code === "EPERM") {
        const info = await stat(file).catch(() => null);
        if (info?.isDirectory()) return;
      }
      throw error;
    }
    await this.removeEmptyParents(path.dirname(file));
  }

  async deletePrefix(prefix: string): Promise<number> {
    assertValidPrefix(prefix);
    const full = path.resolve(this.rootDir, prefix);
    if (prefix.endsWith("/")) {
      const count = await countFiles(full);
      await rm(full, { recursive: true, force: true });
      await this.removeEmptyParents(path.dirname(full));
      return count;
    }
    // A prefix that ends mid-name: match siblings by name within the parent folder.
    const parent = path.dirname(full);
    const namePrefix = path.basename(full);
    let entries: string[];
    try {
      entries = await readdir(parent);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
      throw error;
    }
    let count = 0;
    for (const entry of entries.filter((name) => name.startsWith(namePrefix))) {
      const entryPath = path.join(parent, entry);
      count += await countFiles(entryPath);
      await rm(entryPath, { recursive: true, force: true });
    }
    await this.removeEmptyParents(parent);
    return count;
  }

  /** Folders left empty by a delete are removed up to (not including) the root, so sweeps leave no litter. */
  private async removeEmptyParents(dir: string): Promise<void> {
    let current = dir;
    while (current.startsWith(this.rootDir + path.sep)) {
      try {
        await rmdir(current);
      } catch {
        return; // not empty, already gone, or in use by a concurrent put
      }
      current = path.dirname(current);
    }
  }
}

/**
 * Creates the folder and the temporary file. A concurrent delete of a sibling's last object
 * may remove a folder just created, between the levels of a recursive mkdir (which then fails
 * with ENOENT) or before the file exists in it, so creation is retried a few times.
 */
async function createTempFile(temp: string): Promise<FileHandle> {
  for (let attempt = 1; ; attempt++) {
    try {
      await mkdir(path.dirname(temp), { recursive: true });
      return await open(temp, "wx");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT" || attempt >= 5) throw error;
    }
  }
}

/** Counts completed objects (not temporary files) under a file or folder. */
async function countFiles(target: string): Promise<number> {
  let info;
  try {
    info = await stat(target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw error;
  }
  if (info.isFile()) return path.basename(target).startsWith(TEMP_MARKER) ? 0 : 1;
  let count = 0;
  for (const entry of await readdir(target, { withFileTypes: true })) {
    const child = path.join(target, entry.name);
    if (entry.isDirectory()) count += await countFiles(child);
    else if (!entry.name.startsWith(TEMP_MARKER)) count += 1;
  }
  return count;
}
