/**
 * Records are staged exactly as the API returned them, pretty-printed ones included: their line
 * breaks (only ever whitespace between tokens in valid JSON) become spaces, and nothing is parsed
 * and serialised again, which would round big integers, respell numbers and change escapes.
 */
import { describe, expect, it } from "vitest";
import { messagingInteractions } from "../src/connectors/search.js";
import { jsonDocuments, ndjsonChunks, rawJsonOf, type SourceRecord, type SourceSession } from "../src/index.js";
import { collect } from "./helpers.js";

const WINDOW = { from: new Date("2026-01-01T00:00:00Z"), to: new Date("2026-01-02T00:00:00Z") };

/** A record as the platform might print it: spellings JSON.parse + JSON.stringify would change. */
const RECORD = [
  "{",
  '    "info": {',
  '      "conversationId": "c1",',
  `      "startTimeL": ${Date.UTC(2026, 0, 1, 12)}`,
  "    },",
  '    "accountNumber": 12345678901234567890,',
  '    "balance": 10.50,',
  '    "ratio": 1E2,',
  '    "note": "caf\\u00e9 \\/ \\"q\\"\\r\\n",',
  '    "text": "line\\nbreak"',
  "  }",
].join("\r\n");

async function staged(records: AsyncIterable<SourceRecord>): Promise<string> {
  let out = "";
  for await (const chunk of ndjsonChunks(records)) out += chunk.toString("utf8");
  return out;
}

describe("records that arrived pretty-printed", () => {
  it("are staged from a search page byte for byte, line breaks turned into spaces", async () => {
    const page = `{\r\n  "_metadata": {"count": 1},\r\n  "conversationHistoryRecords": [\r\n  ${RECORD}\r\n  ]\r\n}\r\n`;
    const session = {
      accountId: "1",
      csds: { baseUrl: async () => "https://search.example" },
      http: { send: async () => ({ body: Buffer.from(page) }) },
      now: () => new Date("2026-01-03T00:00:00Z"),
      countCall: () => {},
    } as never as SourceSession;
    const records = await collect(messagingInteractions.fetch(session, WINDOW, { asReceived: true }));
    expect(records).toHaveLength(1);
    const line = await staged((async function* () { yield* records; })());
    expect(line).toBe(`${RECORD.replace(/[\r\n]/g, " ")}\n`);
    expect(line).toContain('"accountNumber": 12345678901234567890,');
    expect(line).toContain('"balance": 10.50,');
    expect(line).toContain('"note": "caf\\u00e9 \\/ \\"q\\"\\r\\n",');
    expect(line.trimEnd()).not.toMatch(/[\r\n]/);
    expect(JSON.parse(line)).toEqual(JSON.parse(RECORD));
  });

  it("are kept exactly when they come as text (Data Access documents)", () => {
    const [document] = [...jsonDocuments(`${RECORD}\n`)] as object[];
    expect(rawJsonOf(document!)).toBe(RECORD.replace(/[\r\n]/g, " "));
  });

  it("keep multi-byte characters whole when they come as bytes", () => {
    const bytes = Buffer.from('{\n"a": "é😀",\r\n"b": 1.0}', "utf8");
    const record = {};
    Object.defineProperty(record, Symbol.for("transporter.sources.rawJson"), { value: bytes });
    const raw = rawJsonOf(record)!;
    expect(Buffer.from(raw).toString("utf8")).toBe('{ "a": "é😀",  "b": 1.0}');
    // The response buffer the record was cut from is not changed.
    expect(bytes.toString("utf8")).toBe('{\n"a": "é😀",\r\n"b": 1.0}');
  });
});
