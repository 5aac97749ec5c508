import type { ChunkResult } from "../chunk-mapper.js";
import type { MalformedPolicy } from "../types.js";
import type { TextFormat } from "../writers/text-encodings.js";

/** Everything a worker thread needs to read and encode chunks of one transform. */
export interface EncodeSpec {
  /** One transform: a worker builds its mapper and encoding once per transform, not per chunk. */
  transformId: string;
  report: string;
  version: number;
  format: TextFormat;
  /** Parameters already validated against the version's schema. */
  params: unknown;
  malformed: MalformedPolicy;
  maxExamples: number;
  timeZone: string;
  bom: boolean;
  keepFormulas: boolean;
}

/** One line-aligned chunk of NDJSON to read and encode (its buffer is transferred, not copied). */
export interface EncodeTask {
  spec: EncodeSpec;
  bytes: Uint8Array;
}

/** The chunk's entries in the file format (no head or tail) and what reading it gave. */
export interface EncodedChunk {
  result: ChunkResult;
  bytes: Uint8Array;
}
