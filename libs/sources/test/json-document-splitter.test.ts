import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { JsonDocumentSplitter } from "../src/json-document-splitter.js";
import { rawJsonOf } from "../src/index.js";

/** Every document the splitter finds in `chunks`, fed one after the other. */
function split(chunks: Buffer[], maxDocumentBytes?: number): unknown[] {
  const splitter = new JsonDocumentSplitter({ api: "data-access-survey", ...(maxDocumentBytes ? { maxDocumentBytes } : {}) });
  const out: unknown[] = [];
  for (const chunk of chunks) for (const doc of splitter.push(chunk)) out.push(doc);
  splitter.end();
  return out;
}

function thrown(run: () => unknown): Error & Record<string, unknown> {
  try {
    run();
  } catch (error) {
    return error as Error & Record<string, unknown>;
  }
  throw new Error("expected a failure");
}

// Strings with escapes (\" \\ \/ \uXXXX, a surrogate pair), brackets inside strings, and UTF-8 of
// two, three and four bytes: every byte of them is somewhere a chunk may end.
const DOCS = [
  '{"a":"x\\"}{[\\\\","b":[1,{"c":"]"}],"é":"日本","emoji":"🙂\\ud83d\\ude42","esc":"\\u00e9\\/\\n\\t"}',
  '[{"k":"\\\\"},"\\"",-1.5e3,true,null,{}]',
  '{"nested":{"deep":[[[{"s":"{\\"not\\":\\"json\\"}"}]]]},"ü":"ß€𝄞"}',
];
const TEXT = ` ${DOCS[0]}\n${DOCS[1]}\r\n\t${DOCS[2]}  \n`;
const EXPECTED = DOCS.map((d) => JSON.parse(d) as unknown);

describe("JSON documents split across chunks", () => {
  const bytes = Buffer.from(TEXT, "utf8");

  it("parses identically to JSON.parse wherever one chunk boundary falls", () => {
    for (let at = 0; at <= bytes.length; at++) {
      const docs = split([bytes.subarray(0, at), bytes.subarray(at)]);
      expect(docs, `split at byte ${at}`).toEqual(EXPECTED);
      // The raw JSON kept beside each document is exactly its text, multi-byte characters intact.
      expect(docs.map((d) => rawJsonOf(d as object))).toEqual(DOCS);
    }
  });

  it("parses identically wherever two chunk boundaries fall, and byte by byte", () => {
    for (let a = 0; a <= bytes.length; a += 3) {
      for (let b = a; b <= bytes.length; b += 5) {
        expect(split([bytes.subarray(0, a), bytes.subarray(a, b), bytes.subarray(b)]), `split at ${a} and ${b}`).toEqual(EXPECTED);
      }
    }
    expect(split([...bytes].map((byte) => Buffer.from([byte])))).toEqual(EXPECTED);
  });

  it("parses any JSON documents identically to JSON.parse, however the bytes are chunked", () => {
    const document = fc.oneof(fc.dictionary(fc.string({ unit: "binary" }), fc.jsonValue({ stringUnit: "binary" })), fc.array(fc.jsonValue({ stringUnit: "binary" })));
    fc.assert(
      fc.property(fc.array(document, { maxLength: 5 }), fc.array(fc.nat(), { maxLength: 8 }), (docs, cuts) => {
        const bytes = Buffer.from(docs.map((d) => JSON.stringify(d)).join("\n"), "utf8");
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((x, y) => x - y);
        const chunks = [0, ...points].map((from, k) => bytes.subarray(from, [...points, bytes.length][k]));
        expect(split(chunks)).toEqual(docs.map((d) => JSON.parse(JSON.stringify(d)) as unknown));
      }),
      { numRuns: 300 },
    );
  });

  it("reports where a file breaks off as a truncated file, at its byte length", () => {
    for (let at = 1; at < bytes.length - 3; at++) {
      const cut = bytes.subarray(0, at);
      if (!/[^\s]/.test(cut.toString("utf8", cut.length - 1))) continue; // cut between documents: nothing missing
      let error: Error & Record<string, unknown>;
      try {
        split([cut.subarray(0, at >> 1), cut.subarray(at >> 1)]);
        continue; // the cut fell just after a complete document
      } catch (e) {
        error = e as Error & Record<string, unknown>;
      }
      expect(error, `cut at ${at}`).toMatchObject({ code: "malformed_response", permanent: false, details: { byteOffset: at } });
      expect(error.message).toMatch(/truncated/);
    }
  });

  it("reports broken JSON and text between documents at their byte offset", () => {
    // The stray `}` is character 20 but byte 26 of the file: 日本 take three bytes each.
    const broken = Buffer.from('{"a":1} {"b":"日本","c":}', "utf8");
    const error = thrown(() => split([broken.subarray(0, 11), broken.subarray(11)]));
    expect(error).toMatchObject({ code: "malformed_response", details: { byteOffset: 26 } });
    expect(error.message).toMatch(/invalid JSON document at byte 26/);
    expect(thrown(() => split([Buffer.from('{"a":1}\n x')]))).toMatchObject({ code: "malformed_response", details: { byteOffset: 9 } });
    expect(thrown(() => split([Buffer.from('{"a":1}]')])).message).toMatch(/unbalanced JSON at byte 7/);
  });

  it("refuses a document larger than the limit, permanently and apart from malformed JSON", () => {
    const big = Buffer.from(`{"a":1}\n{"pad":"${"x".repeat(300)}"}\n{"b":2}`, "utf8");
    expect(split([big], 400)).toHaveLength(3);
    for (const chunks of [[big], [big.subarray(0, 100), big.subarray(100, 200), big.subarray(200)]]) {
      const error = thrown(() => split(chunks, 200));
      expect(error).toMatchObject({ code: "record_too_large", permanent: true, details: { api: "data-access-survey", byteOffset: 8 } });
      expect(error.message).toMatch(/larger than 200 bytes/);
    }
  });
});
