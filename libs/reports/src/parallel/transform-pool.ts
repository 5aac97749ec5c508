import { availableParallelism } from "node:os";
import { Piscina } from "piscina";
import type { EncodedChunk, EncodeSpec, EncodeTask } from "./encode-task.js";

export interface TransformPoolOptions {
  /** Worker threads (default: one per core). */
  threads?: number;
  /**
   * The worker module. Defaults to `encode-worker` beside this file; when that is the
   * TypeScript source, the threads load it through tsx, as the services themselves run.
   */
  workerFile?: URL;
  /**
   * Lines are handed to the threads in chunks of at least this many bytes (default 128 KiB):
   * large enough that handing one over costs little beside reading it, small enough to keep
   * memory low and every thread busy.
   */
  chunkBytes?: number;
}

const DEFAULT_CHUNK_BYTES = 128 * 1024;

/**
 * Worker threads that read and encode NDJSON chunks for the text formats (CSV, NDJSON), so a
 * large transform uses every core: JSON parsing and string building are the transform's
 * cost, and the chunks of a file do not depend on each other. One pool serves every transform
 * of a process; each transform keeps its own order and bound on chunks in flight.
 */
export class TransformPool {
  readonly threads: number;
  readonly chunkBytes: number;
  private readonly piscina: Piscina<EncodeTask | "ping", EncodedChunk | "pong">;

  constructor(options: TransformPoolOptions = {}) {
    this.threads = Math.max(1, Math.floor(options.threads ?? availableParallelism()));
    this.chunkBytes = Math.max(1, Math.floor(options.chunkBytes ?? DEFAULT_CHUNK_BYTES));
    const file = options.workerFile ?? new URL(import.meta.url.endsWith(".ts") ? "./encode-worker.ts" : "./encode-worker.js", import.meta.url);
    // A TypeScript worker module needs the tsx loader in its thread. Threads otherwise inherit
    // the process's flags (given explicitly, per-process V8 flags such as
    // --max-semi-space-size would be refused).
    const needsTsx = file.pathname.endsWith(".ts") && !process.execArgv.some((arg) => arg.includes("tsx"));
    this.piscina = new Piscina({
      filename: file.href,
      minThreads: this.threads,
      maxThreads: this.threads,
      // Each thread takes one chunk at a time; callers bound how many they queue.
      concurrentTasksPerWorker: 1,
      recordTiming: false,
      ...(needsTsx ? { execArgv: ["--import", "tsx"] } : {}),
    });
  }

  /** Resolves once every thread has loaded the worker module (a cold thread takes ~0.5 s under tsx). */
  async warmUp(): Promise<void> {
    await Promise.all(Array.from({ length: this.threads }, () => this.piscina.run("ping")));
  }

  /** Reads and encodes one chunk; `bytes` is moved to the worker (unusable here afterwards). */
  async encode(spec: EncodeSpec, bytes: Uint8Array): Promise<EncodedChunk> {
    const encoded = await this.piscina.run({ spec, bytes }, { transferList: [bytes.buffer as ArrayBuffer] });
    if (encoded === "pong") throw new TypeError("the transform worker answered a chunk with pong");
    return encoded;
  }

  async close(): Promise<void> {
    await this.piscina.close({ force: true });
  }
}
