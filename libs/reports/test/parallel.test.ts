import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { LineSplitter, type LineChunk } from "../src/line-splitter.js";
import { MalformedInputError, TransformPool, type TransformRequest } from "../src/index.js";
import { goldenInput, transformToBuffer } from "./helpers.js";

/**
 * The worker-thread pool must change nothing but the speed: for any input, cut anywhere, the
 * pool's output bytes, counts, skipped examples and failures are those of the single-thread path.
 */

const conversations = goldenInput("messaging-interactions").map((l) => l.trimEnd());

/** One NDJSON line: a real record, or something a report cannot read. */
const line = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...conversations) },
  { weight: 1, arbitrary: fc.constantFrom("", "   ", "\t", "{not json", "[1,2]", "null", '{"info":{}}', '{"info":{"conversationId":"x","startTimeL":"soon"}}') },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 40 }).map((s) => s.replace(/\n/g, " ")) },
  // Long enough to pass a small line limit.
  { weight: 1, arbitrary: fc.constantFrom(...conversations).map((c) => c.replace('"info":{', `"padding":"${"é".repeat(700)}","info":{`)) },
);

const input = fc.record({
  lines: fc.array(line, { maxLength: 60 }),
  crlf: fc.boolean(),
  bom: fc.boolean(),
  finalNewline: fc.boolean(),
  inputChunk: fc.integer({ min: 1, max: 5000 }),
});

function text({ lines, crlf, bom, finalNewline }: { lines: string[]; crlf: boolean; bom: boolean; finalNewline: boolean }): string {
  const body = lines.join(crlf ? "\r\n" : "\n");
  return `${bom ? "\uFEFF" : ""}${body}${finalNewline && lines.length > 0 ? "\n" : ""}`;
}

type Outcome = { ok: true; output: string; result: unknown } | { ok: false; error: unknown };

async function outcome(run: Promise<{ result: unknown; output: Buffer }>): Promise<Outcome> {
  try {
    const { result, output } = await run;
    return { ok: true, output: output.toString("latin1"), result };
  } catch (error) {
    return { ok: false, error: error instanceof MalformedInputError ? { name: error.name, line: error.line, message: error.message } : error };
  }
}

describe("the transform pool", () => {
  // Tiny chunks: inputs of a few KB are cut into many pieces, spread over both threads.
  const pool = new TransformPool({ threads: 2, chunkBytes: 700 });
  afterAll(() => pool.close());

  it("writes the same bytes and results as one thread, for any input, cut anywhere", { timeout: 120_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(
        input,
        fc.constantFrom<Pick<TransformRequest, "report" | "version" | "format" | "params">>(
          { report: "messaging-conversations", version: 1, format: "csv" },
          { report: "messaging-conversations", version: 2, format: "ndjson", params: { includeTranscript: true } },
          { report: "messaging-messages", version: 1, format: "csv" },
          { report: "messaging-conversations-raw", version: 1, format: "ndjson" },
        ),
        fc.record({ malformed: fc.constantFrom("skip" as const, "fail" as const), maxSkippedExamples: fc.integer({ min: 0, max: 4 }), csvBom: fc.boolean() }),
        fc.constantFrom(undefined, 1000),
        async (data, report, options, maxLineBytes) => {
          const request: TransformRequest = { ...report, timeZone: "America/Sao_Paulo", options };
          const limit = maxLineBytes === undefined ? {} : { maxLineBytes };
          const serial = await outcome(transformToBuffer(request, text(data), limit, data.inputChunk));
          const parallel = await outcome(transformToBuffer(request, text(data), { ...limit, pool }, data.inputChunk));
          expect(parallel).toEqual(serial);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("keeps each transform's own report and zone when several share the threads", async () => {
    const lines = Array.from({ length: 40 }, () => conversations).flat();
    const requests: TransformRequest[] = [
      { report: "messaging-conversations", version: 1, format: "csv", timeZone: "Europe/Berlin" },
      { report: "messaging-conversations", version: 1, format: "csv", timeZone: "Pacific/Chatham" },
      { report: "messaging-messages", version: 1, format: "ndjson", timeZone: "Asia/Kathmandu" },
      { report: "messaging-conversations", version: 2, format: "csv", timeZone: "UTC", params: { includeTranscript: true } },
    ];
    const together = await Promise.all(requests.map((r) => transformToBuffer(r, lines.join("\n"), { pool })));
    for (const [i, request] of requests.entries()) {
      const alone = await transformToBuffer(request, lines.join("\n"));
      expect(together[i]!.output.equals(alone.output)).toBe(true);
      expect(together[i]!.result).toEqual(alone.result);
    }
  });

  it("names the first unreadable line under the fail policy, however far the threads had read", async () => {
    const lines = Array.from({ length: 500 }, (_, i) => conversations[i % conversations.length]!);
    lines[377] = '{"info":{"conversationId":"broken"}}';
    lines[420] = "{not json";
    const request: TransformRequest = { report: "messaging-conversations", version: 1, format: "csv", timeZone: "UTC", options: { malformed: "fail" } };
    await expect(transformToBuffer(request, lines.join("\n"), { pool })).rejects.toMatchObject({ name: "MalformedInputError", line: 378 });
  });

  it("reports a thread's error as the transform's, and the pool keeps working", async () => {
    const spec = {
      transformId: "t",
      report: "no-such-report",
      version: 1,
      format: "csv" as const,
      params: {},
      malformed: "skip" as const,
      maxExamples: 5,
      timeZone: "UTC",
      bom: false,
      keepFormulas: false,
    };
    await expect(pool.encode(spec, new Uint8Array(Buffer.from(`${conversations[0]}\n`)))).rejects.toThrow(/no-such-report/);
    const { result } = await transformToBuffer({ report: "messaging-conversations", version: 1, format: "csv", timeZone: "UTC" }, conversations.join("\n"), { pool });
    expect(result.rows).toBe(conversations.length);
  });
});

describe("LineSplitter", () => {
  function split(bytes: Buffer, cut: number, maxLineBytes: number, minChunkBytes: number): LineChunk[] {
    const splitter = new LineSplitter(maxLineBytes, minChunkBytes);
    const chunks: LineChunk[] = [];
    for (let i = 0; i < bytes.length; i += cut) chunks.push(...splitter.push(bytes.subarray(i, i + cut)));
    chunks.push(...splitter.end());
    return chunks;
  }

  it("cuts after newlines only, keeps every byte, and drops only a leading byte order mark", () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: "grapheme", maxLength: 30 }).map((s) => s.replace(/\n/g, "")), { maxLength: 40 }),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: 300 }),
        (lines, bom, finalNewline, cut, minChunk) => {
          const body = lines.join("\n") + (finalNewline ? "\n" : "");
          const bytes = Buffer.from(`${bom ? "\uFEFF" : ""}${body}`, "utf8");
          const chunks = split(bytes, cut, 1 << 20, minChunk);
          const pieces = chunks.map((c) => (c.kind === "lines" ? c.bytes : Buffer.alloc(0)));
          expect(chunks.every((c) => c.kind === "lines")).toBe(true);
          expect(Buffer.concat(pieces).toString("utf8")).toBe(body);
          pieces.slice(0, -1).forEach((p) => {
            expect(p[p.length - 1]).toBe(10);
            expect(p.length).toBeGreaterThanOrEqual(minChunk);
          });
          expect(pieces.every((p) => p.length > 0)).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("puts a marker in place of each line dropped for being too long, and keeps the others exactly", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 120 }), { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 1, max: 90 }),
        fc.integer({ min: 10, max: 60 }),
        fc.integer({ min: 1, max: 300 }),
        (lengths, cut, max, minChunk) => {
          const lines = lengths.map((n, i) => String.fromCharCode(97 + (i % 26)).repeat(n));
          const chunks = split(Buffer.from(`${lines.join("\n")}\n`), cut, max, minChunk);
          const seen: (string | null)[] = [];
          for (const c of chunks) {
            if (c.kind === "overlong") seen.push(null);
            else seen.push(...c.bytes.toString().split("\n").slice(0, -1));
          }
          expect(seen).toHaveLength(lines.length);
          // Exactly the lines longer than the limit are dropped, however the input was cut.
          seen.forEach((s, i) => {
            if (lines[i]!.length > max) expect(s).toBeNull();
            else expect(s).toBe(lines[i]);
          });
        },
      ),
      { numRuns: 500 },
    );
  });

  it("recognises a byte order mark split across pieces, and keeps bytes that only look like its start", () => {
    const bom = Buffer.from("\uFEFF{}\n", "utf8");
    expect(Buffer.concat(split(bom, 1, 100, 1).map((c) => (c.kind === "lines" ? c.bytes : Buffer.alloc(0)))).toString()).toBe("{}\n");
    const almost = Buffer.from([0xef, 0xbb, 0x41, 0x0a]);
    expect(Buffer.concat(split(almost, 1, 100, 1).map((c) => (c.kind === "lines" ? c.bytes : Buffer.alloc(0))))).toEqual(almost);
    expect(split(Buffer.from([0xef]), 1, 100, 1)).toEqual([{ kind: "lines", bytes: Buffer.from([0xef]) }]);
  });
});
