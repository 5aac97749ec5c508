import { Transform, type TransformCallback } from "node:stream";
import { MappingTally, type ChunkMapper, type MappingStats } from "../chunk-mapper.js";
import { LineSplitter, type LineChunk } from "../line-splitter.js";
import type { TextEncoding } from "../writers/text-writer.js";
import type { EncodedChunk, EncodeSpec } from "./encode-task.js";
import type { TransformPool } from "./transform-pool.js";

export interface ParallelEncoderOptions {
  pool: TransformPool;
  spec: EncodeSpec;
  /** The format's encoding: its head and tail are written here, its entries by the workers. */
  encoding: TextEncoding;
  /** Reads the chunks that never reach a worker (an over-long line's place). */
  mapper: ChunkMapper;
  maxLineBytes: number;
}

const NO_BYTES = new Uint8Array(0);

/**
 * NDJSON bytes in, file bytes out, with the reading and encoding done by the pool's threads.
 * Chunks are handed out as they arrive and their results are written strictly in input order,
 * so the output, the stats and the first skipped examples are byte for byte those of the
 * single-thread path. At most two chunks per thread are in flight: input is only read as
 * fast as the workers and the output's reader keep up.
 */
export class ParallelEncoder extends Transform {
  private readonly splitter: LineSplitter;
  private readonly tally: MappingTally;
  /** Chunks in flight, oldest first. */
  private readonly inFlight: Promise<EncodedChunk>[] = [];
  private readonly maxInFlight: number;
  private started = false;

  constructor(private readonly options: ParallelEncoderOptions) {
    super({ writableObjectMode: false, readableObjectMode: false, readableHighWaterMark: 1024 * 1024 });
    this.splitter = new LineSplitter(options.maxLineBytes, options.pool.chunkBytes);
    this.tally = new MappingTally(options.mapper.maxExamples);
    this.maxInFlight = options.pool.threads * 2;
  }

  get stats(): MappingStats {
    return this.tally.stats;
  }

  private submit(chunks: LineChunk[]): void {
    for (const chunk of chunks) {
      let encoded: Promise<EncodedChunk>;
      if (chunk.kind === "overlong") {
        encoded = Promise.resolve({ result: this.options.mapper.map(chunk, { rows: [], records: [] }), bytes: NO_BYTES });
      } else {
        // A copy the worker can own: the chunk may share memory with other data of this thread.
        encoded = this.options.pool.encode(this.options.spec, new Uint8Array(chunk.bytes));
        // Its failure is reported when its turn comes (or never, if the stream ended first).
        encoded.catch(() => undefined);
      }
      this.inFlight.push(encoded);
    }
  }

  /** Writes out finished chunks in order until at most `keep` are still in flight. */
  private async settle(keep: number): Promise<void> {
    while (this.inFlight.length > keep) {
      const { result, bytes } = await this.inFlight.shift()!;
      this.tally.add(result);
      this.begin();
      if (bytes.length > 0) this.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    }
  }

  private begin(): void {
    if (this.started) return;
    this.started = true;
    const head = this.options.encoding.head();
    if (head.length > 0) this.push(Buffer.from(head, "utf8"));
  }

  /** Hands out the chunks that `split` completes, then writes out results until `keep` remain. */
  private step(split: () => LineChunk[], keep: number, done: TransformCallback, after?: () => void): void {
    Promise.resolve()
      .then(() => {
        this.submit(split());
        return this.settle(keep);
      })
      .then(() => {
        after?.();
        done();
      }, done);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.step(() => this.splitter.push(chunk), this.maxInFlight - 1, done);
  }

  override _flush(done: TransformCallback): void {
    this.step(() => this.splitter.end(), 0, done, () => {
      this.begin();
      const tail = this.options.encoding.tail(this.tally.stats.rows === 0);
      if (tail.length > 0) this.push(Buffer.from(tail, "utf8"));
    });
  }
}
