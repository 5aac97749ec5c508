/**
 * The worker thread's side of the transform pool: reads one line-aligned NDJSON chunk through
 * the report definition and encodes its entries in the text format. Imports only what that
 * needs (no XLSX writer), so a thread starts quickly and stays small.
 */
import { move, transferableSymbol, valueSymbol } from "piscina";
import { getReport } from "../catalogue.js";
import { ChunkMapper, type ChunkOutput } from "../chunk-mapper.js";
import type { Row } from "../types.js";
import { createTextEncoding } from "../writers/text-encodings.js";
import { BatchBuffer, type TextEncoding } from "../writers/text-writer.js";
import { ZonedTime } from "../zoned-time.js";
import type { EncodedChunk, EncodeSpec, EncodeTask } from "./encode-task.js";

interface Prepared {
  transformId: string;
  mapper: ChunkMapper;
  encoding: TextEncoding;
}

let prepared: Prepared | null = null;

function prepare(spec: EncodeSpec): Prepared {
  if (prepared?.transformId === spec.transformId) return prepared;
  const { version } = getReport(spec.report, spec.version);
  const options = { time: new ZonedTime(spec.timeZone), bom: spec.bom, keepFormulas: spec.keepFormulas };
  prepared = {
    transformId: spec.transformId,
    mapper: new ChunkMapper({ version, params: spec.params, malformed: spec.malformed, maxExamples: spec.maxExamples }),
    encoding: createTextEncoding(spec.format, version.shape === "rows" ? { ...options, columns: version.columns } : options),
  };
  return prepared;
}

export default function encodeChunk(task: EncodeTask | "ping"): unknown {
  // The pool's warm-up: this module (and so the report catalogue) is loaded.
  if (task === "ping") return "pong";
  const { mapper, encoding } = prepare(task.spec);
  if (!encoding.standalone) throw new TypeError(`${task.spec.format} entries cannot be encoded apart`);
  const input = Buffer.from(task.bytes.buffer, task.bytes.byteOffset, task.bytes.byteLength);
  const out: ChunkOutput = { rows: [] as Row[], records: [] as string[] };
  const result = mapper.map({ kind: "lines", bytes: input }, out);
  // Output is usually a little smaller than its NDJSON; one buffer of about that size rarely grows.
  const batch = new BatchBuffer(Math.max(16 * 1024, Math.ceil(input.length * 1.1)));
  for (const row of out.rows) batch.add(encoding.row(row, false));
  for (const text of out.records) batch.add(encoding.record(text, false));
  const bytes = batch.bytes;
  // Handed back without a copy: a buffer this large has its memory to itself (not Node's shared pool).
  const own = bytes.byteOffset === 0 && bytes.buffer.byteLength >= Buffer.poolSize ? bytes : new Uint8Array(bytes);
  const value: EncodedChunk = { result, bytes: own };
  return move({ [transferableSymbol]: [own.buffer], [valueSymbol]: value });
}
