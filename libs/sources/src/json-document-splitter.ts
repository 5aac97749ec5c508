import type { SourceApi } from "./apis.js";
import { sourceErrors } from "./errors.js";
import { BACKSLASH, CLOSE_ARRAY, CLOSE_OBJECT, isSpace, OPEN_ARRAY, OPEN_OBJECT, QUOTE } from "./json-bytes.js";
import { firstJsonError } from "./json-offset.js";
import { attachRawJson } from "./raw-json.js";


const indexOrEnd = (bytes: Buffer, byte: number, from: number) => {
  const at = bytes.indexOf(byte, from);
  return at < 0 ? bytes.length : at;
};

export interface JsonDocumentSplitterOptions {
  /** Named in errors. */
  api?: SourceApi;
  /** Largest document accepted, in bytes; a larger one is a permanent `record_too_large`. */
  maxDocumentBytes?: number;
}

/**
 * Splits JSON documents (concatenated or one per line, as the Data Access files are) out of bytes
 * fed chunk by chunk, parsing each as soon as its last byte arrives. Works on UTF-8 bytes: every
 * structural character is ASCII and never part of a multi-byte sequence, so a chunk may end
 * anywhere (inside a string, an escape or a character) and only the unfinished document is held.
 * Errors carry the byte offset from the start of the input.
 */
export class JsonDocumentSplitter {
  private readonly api: SourceApi | undefined;
  private readonly maxDocumentBytes: number;
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** The unfinished document's bytes from earlier chunks (copies: chunks are not ours to keep). */
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** Offset of the unfinished document's first byte. */
  private documentStart = 0;
  /** Bytes fed before the current chunk. */
  private consumed = 0;

  constructor(options: JsonDocumentSplitterOptions = {}) {
    this.api = options.api;
    this.maxDocumentBytes = options.maxDocumentBytes ?? Number.POSITIVE_INFINITY;
  }

  /** The documents completed by this chunk, in order. Consume them all before the next push. */
  *push(chunk: Uint8Array): Generator<unknown> {
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const n = bytes.length;
    const base = this.consumed;
    this.consumed += n;
    let { depth, inString, escaped } = this;
    // Where the unfinished document starts in this chunk: 0 when it began in an earlier one.
    let start = depth > 0 ? 0 : -1;
    // Inside strings (most of a document) jump from quote or backslash to the next one: memchr
    // is far faster than a loop over every byte. Positions are found once each, so O(n).
    let nextQuote = -1;
    let nextBackslash = -1;
    for (let i = 0; i < n; i++) {
      if (inString) {
        if (escaped) {
          escaped = false;
          continue;
        }
        if (nextQuote < i) nextQuote = indexOrEnd(bytes, QUOTE, i);
        if (nextBackslash < i) nextBackslash = indexOrEnd(bytes, BACKSLASH, i);
        i = Math.min(nextQuote, nextBackslash);
        if (i >= n) break;
        if (bytes[i] === BACKSLASH) escaped = true;
        else inString = false;
        continue;
      }
      const c = bytes[i]!;
      if (c === QUOTE) {
        if (depth === 0) throw sourceErrors.malformed(this.api, "unexpected text between JSON documents", base + i);
        inString = true;
      } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
        if (depth === 0) {
          start = i;
          this.documentStart = base + i;
        }
        depth++;
      } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
        depth--;
        if (depth < 0) throw sourceErrors.malformed(this.api, "unbalanced JSON", base + i);
        if (depth === 0) {
          const document = this.complete(bytes.subarray(start, i + 1));
          start = -1;
          this.depth = 0;
          yield document;
        }
      } else if (depth === 0 && !isSpace(c)) {
        throw sourceErrors.malformed(this.api, "unexpected text between JSON documents", base + i);
      }
    }
    Object.assign(this, { depth, inString, escaped });
    if (depth > 0) this.hold(bytes.subarray(start));
  }

  /** Call when the input ends: a document still open means the input was cut short. */
  end(): void {
    if (this.depth !== 0 || this.inString) throw sourceErrors.malformed(this.api, "JSON ends early (truncated file)", this.consumed);
  }

  private hold(part: Buffer): void {
    this.heldBytes += part.length;
    if (this.heldBytes > this.maxDocumentBytes) throw sourceErrors.recordTooLarge(this.api, this.maxDocumentBytes, this.documentStart);
    this.held.push(Buffer.from(part));
  }

  private complete(tail: Buffer): unknown {
    const size = this.heldBytes + tail.length;
    if (size > this.maxDocumentBytes) throw sourceErrors.recordTooLarge(this.api, this.maxDocumentBytes, this.documentStart);
    const bytes = this.held.length === 0 ? tail : Buffer.concat([...this.held, tail], size);
    this.held = [];
    this.heldBytes = 0;
    // Decoded whole, so a character split across chunks is read as one.
    const text = bytes.toString("utf8");
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch {
      const at = Math.max(0, firstJsonError(text));
      throw sourceErrors.malformed(this.api, "invalid JSON document", this.documentStart + Buffer.byteLength(text.slice(0, at)));
    }
    if (document !== null && typeof document === "object") attachRawJson(document, text);
    return document;
  }
}

/** The JSON documents of a whole text (see `JsonDocumentSplitter`). */
export function* jsonDocuments(text: string, api?: SourceApi): Generator<unknown> {
  const splitter = new JsonDocumentSplitter(api ? { api } : {});
  yield* splitter.push(Buffer.from(text, "utf8"));
  splitter.end();
}
