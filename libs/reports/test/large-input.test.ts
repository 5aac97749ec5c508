import { Readable, Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { conversationsForWindow } from "@transporter/simulator";
import { transformStream, TransformPool, type ReportFormat, type TransformResult, type TransformRuntime } from "../src/index.js";

/**
 * Flat memory on a large input: 1 GiB of NDJSON (override with REPORTS_LARGE_INPUT_BYTES) is
 * generated on the fly, never written to disk, and transformed while RSS is sampled. The bound is
 * generous on purpose; what it rules out is memory that grows with the number of records.
 */
const TOTAL_BYTES = Number(process.env.REPORTS_LARGE_INPUT_BYTES ?? 1024 ** 3);
const MB = 1024 * 1024;
/** RSS may grow this much over what it was once the pipeline had warmed up. */
const ALLOWED_GROWTH = 160 * MB;

/** Real simulator conversations, serialised once and repeated until `total` bytes are out. */
function generatedInput(total: number): { stream: Readable; produced: () => number } {
  const lines = Array.from(conversationsForWindow("70001234", Date.UTC(2026, 4, 1), Date.UTC(2026, 4, 1, 8), "large-input"), (r) =>
    Buffer.from(`${JSON.stringify(r)}\n`),
  );
  let produced = 0;
  let i = 0;
  const stream = new Readable({
    highWaterMark: 256 * 1024,
    read(size) {
      const parts: Buffer[] = [];
      let bytes = 0;
      while (bytes < size && produced + bytes < total) {
        const line = lines[i++ % lines.length]!;
        parts.push(line);
        bytes += line.length;
      }
      produced += bytes;
      const chunk = parts.length > 0 ? Buffer.concat(parts) : null;
      // Like a file or network read, the next chunk arrives on a later turn of the event loop.
      setImmediate(() => this.push(chunk));
    },
  });
  return { stream, produced: () => produced };
}

class CountingSink extends Writable {
  bytes = 0;
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.bytes += chunk.length;
    done();
  }
}

async function measure(format: ReportFormat, total: number, runtime: TransformRuntime = {}) {
  const { stream, produced } = generatedInput(total);
  const samples: { at: number; rss: number }[] = [];
  const timer = setInterval(() => samples.push({ at: produced() / total, rss: process.memoryUsage().rss }), 50);
  const sink = new CountingSink();
  try {
    const result = await transformStream({ report: "messaging-conversations", version: 1, format, timeZone: "Europe/Berlin" }, stream, sink, runtime);
    return { result, samples, sink };
  } finally {
    clearInterval(timer);
  }
}

/** Every record became a row and every byte reached the sink. */
function expectComplete(result: TransformResult, sink: CountingSink): void {
  expect(result.skipped).toBe(0);
  expect(result.rows).toBe(result.records);
  expect(result.bytes).toBe(sink.bytes);
}

/** RSS once warmed up (past the first tenth of the input) never grew by more than the allowance. */
function expectFlat(samples: { at: number; rss: number }[]): void {
  const warm = samples.filter((s) => s.at >= 0.1);
  expect(warm.length).toBeGreaterThan(5);
  const baseline = warm[0]!.rss;
  const peak = Math.max(...warm.map((s) => s.rss));
  expect(peak - baseline, `RSS grew from ${Math.round(baseline / MB)} MiB to ${Math.round(peak / MB)} MiB`).toBeLessThan(ALLOWED_GROWTH);
}

describe("large input", () => {
  it(`transforms ${Math.round(TOTAL_BYTES / MB)} MiB of NDJSON to CSV with flat memory`, { timeout: 900_000 }, async () => {
    const { result, samples, sink } = await measure("csv", TOTAL_BYTES);
    expectComplete(result, sink);
    expectFlat(samples);
  });

  it(`transforms ${Math.round(TOTAL_BYTES / 4 / MB)} MiB of NDJSON to XLSX with flat memory`, { timeout: 900_000 }, async () => {
    const { result, samples } = await measure("xlsx", TOTAL_BYTES / 4);
    expect(result.skipped).toBe(0);
    expectFlat(samples);
  });

  it(`transforms ${Math.round(TOTAL_BYTES / 2 / MB)} MiB of NDJSON to CSV on worker threads with flat memory`, { timeout: 900_000 }, async () => {
    // RSS counts the threads too: chunks in flight are bounded whatever the input's size.
    const pool = new TransformPool({ threads: 2 });
    try {
      await pool.warmUp();
      const { result, samples, sink } = await measure("csv", TOTAL_BYTES / 2, { pool });
      expectComplete(result, sink);
      expectFlat(samples);
    } finally {
      await pool.close();
    }
  });
});
