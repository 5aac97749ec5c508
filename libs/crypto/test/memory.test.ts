import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decryptStream, encryptStream, generateKeyPair } from "../src/index.js";

// Encrypting must stream: resident memory may not grow with the file. Hundreds of MB pass through
// while RSS is sampled; the bound is generous (the file is several times larger than it).
const FILE_BYTES = 192 * 1024 * 1024;
const DECRYPT_FILE_BYTES = 224 * 1024 * 1024;
const ALLOWED_GROWTH_BYTES = 120 * 1024 * 1024;
const CONSUMER_STALL_MS = 4000;
// Hundreds of MB through zlib on a shared machine: give each case room beyond the default.
const TIMEOUT_MS = 240_000;

const PASSPHRASE = "Memory test passphrase 1";
let publicKey: string;
let privateKey: string;

beforeAll(async () => {
  ({ publicKey, privateKey } = await generateKeyPair({ passphrase: PASSPHRASE, algorithm: "curve25519" }));
});

/** CSV-like rows generated on the fly (nothing held in memory), varied so zlib has real work. */
function generatedReport(totalBytes: number): Readable {
  let produced = 0;
  let row = 0;
  return new Readable({
    read() {
      if (produced >= totalBytes) {
        this.push(null);
        return;
      }
      const lines: string[] = [];
      for (let i = 0; i < 800; i++, row++) {
        lines.push(`2026-11-${String((row % 28) + 1).padStart(2, "0")}T10:00:00Z,conv-${row},agent-${row % 97},"text ${(row * 7919) % 100003}",${row % 1000}.5\n`);
      }
      const chunk = Buffer.from(lines.join("")).subarray(0, totalBytes - produced);
      produced += chunk.length;
      this.push(chunk);
    },
  });
}

/** Random bytes generated on the fly. */
function randomData(totalBytes: number): Readable {
  let produced = 0;
  return new Readable({
    read() {
      if (produced >= totalBytes) {
        this.push(null);
        return;
      }
      const chunk = randomBytes(Math.min(1 << 20, totalBytes - produced));
      produced += chunk.length;
      this.push(chunk);
    },
  });
}

async function peakGrowthWhile(produce: () => Promise<Readable>): Promise<{ growth: number; outputBytes: number }> {
  globalThis.gc?.();
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 25);
  let outputBytes = 0;
  try {
    await pipeline(
      await produce(),
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          outputBytes += chunk.length;
          peak = Math.max(peak, process.memoryUsage().rss);
          // A consumer slower than the producer: it stalls for a while once, then yields to the event
          // loop after every chunk. A pipeline that does not hold back keeps producing meanwhile.
          if (outputBytes === chunk.length) setTimeout(callback, CONSUMER_STALL_MS);
          else setImmediate(callback);
        },
      }),
    );
  } finally {
    clearInterval(sampler);
  }
  return { growth: peak - baseline, outputBytes };
}

describe("encryptStream memory", () => {
  it("stays flat with compression (the default)", async () => {
    const { growth, outputBytes } = await peakGrowthWhile(async () => encryptStream(generatedReport(FILE_BYTES), publicKey, { compression: true }));
    expect(outputBytes).toBeGreaterThan(0);
    expect(outputBytes).toBeLessThan(FILE_BYTES);
    expect(growth).toBeLessThan(ALLOWED_GROWTH_BYTES);
  }, TIMEOUT_MS);

  it("stays flat without compression", async () => {
    const { growth, outputBytes } = await peakGrowthWhile(async () => encryptStream(generatedReport(FILE_BYTES), publicKey, { compression: false }));
    expect(outputBytes).toBeGreaterThan(FILE_BYTES);
    expect(growth).toBeLessThan(ALLOWED_GROWTH_BYTES);
  }, TIMEOUT_MS);
});

describe("decryptStream memory", () => {
  let workDir: string;

  afterAll(async () => {
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  // Incompressible data: the compressed packet is as large as the file, and read from disk it is
  // available at once, so an inflater that does not hold back its input swallows all of it.
  it("stays flat while inflating a large compressed file", async () => {
    workDir = await mkdtemp(join(tmpdir(), "crypto-memory-"));
    const encrypted = join(workDir, "random.pgp");
    await pipeline(encryptStream(randomData(DECRYPT_FILE_BYTES), publicKey), createWriteStream(encrypted));
    const { growth, outputBytes } = await peakGrowthWhile(() => decryptStream(createReadStream(encrypted), privateKey, PASSPHRASE));
    expect(outputBytes).toBe(DECRYPT_FILE_BYTES);
    expect(growth).toBeLessThan(ALLOWED_GROWTH_BYTES);
  }, TIMEOUT_MS);
});

describe("encryptStream resources", () => {
  it("closes its input when the output is destroyed before anything was read (the store failed to open its file)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "encrypt-input-"));
    try {
      const file = join(dir, "report.csv");
      await pipeline(Readable.from([Buffer.from("a,b\r\n1,2\r\n")]), createWriteStream(file));
      const input = createReadStream(file);
      await new Promise((resolve) => input.once("open", resolve));
      const output = encryptStream(input, publicKey);
      output.destroy(new Error("ENOTDIR: mkdir failed"));
      output.on("error", () => undefined);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(input.destroyed).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
