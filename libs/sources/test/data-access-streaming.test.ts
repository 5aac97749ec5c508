import { on, once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Worker } from "node:worker_threads";
import { createGzip, gzipSync } from "node:zlib";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createPlatform, type HttpOptions, type SourceRecord } from "../src/index.js";
import { sessionDocument as sessionDocumentAt, sessionDocuments } from "./fixtures/session-documents.mjs";
import { collect, failure, newCredentials } from "./helpers.js";

/**
 * Data Access files served by local servers that write them as they are generated, so a file
 * far bigger than the memory the connector may use never exists whole on either side.
 */

const MiB = 1024 * 1024;
const WINDOW = { from: new Date("2026-03-01T10:00:00Z"), to: new Date("2026-03-01T11:00:00Z") };
const FILE = "agentActivity_20260301_10.json.gz";

let server: Server;
let baseUrl: string;
/** How the current test answers the file's download. */
let serveFile: (response: ServerResponse, request: IncomingMessage) => void | Promise<void>;

beforeAll(async () => {
  server = createServer((request, response) => {
    const path = new URL(request.url ?? "/", baseUrl).pathname;
    if (path.endsWith("/le/agentActivity")) {
      const href = `${baseUrl}/data_access_le/account/1/le/agentActivity/${FILE}`;
      const file = { "@name": FILE, "@scopeStartDate": WINDOW.from.toISOString(), "@scopeEndDate": WINDOW.to.toISOString(), "@href": href };
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ dataAccessFiles: { file: [file] } }));
      return;
    }
    response.writeHead(200, { "content-type": "application/gzip" });
    response.flushHeaders();
    Promise.resolve(serveFile(response, request)).catch(() => response.destroy());
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  server.close();
});

beforeEach(() => {
  serveFile = (response) => void response.end();
});

function fetchFile(http: HttpOptions = {}, url = baseUrl): AsyncIterable<SourceRecord> {
  const platform = createPlatform({
    csdsUrl: url,
    dataAccessUrl: url,
    allowInsecure: true,
    http: { timeoutMs: 5_000, maxAttempts: 2, sleep: async () => {}, ...http },
  });
  return platform.openSource("1", newCredentials()).fetch("data-access-agent-activity", WINDOW);
}

const sessionDocument = (n: number) => sessionDocumentAt(n, WINDOW.from.getTime());

const gzipped = (text: string) => gzipSync(Buffer.from(text, "utf8"));
const documents = (count: number) => Array.from({ length: count }, (_, n) => sessionDocument(n)).join("");

describe("Data Access files are read as they arrive", () => {
  it("reads a gzipped file of 256 MiB with memory growth far below its size", async () => {
    const size = 256 * MiB;
    // The server in its own thread: this thread's memory is then the connector's alone.
    const worker = new Worker(new URL("./fixtures/generated-file-server.mjs", import.meta.url), { workerData: { bytes: size, from: WINDOW.from.getTime() } });
    try {
      const messages = on(worker, "message");
      const next = async () => ((await messages.next()).value as [Record<string, unknown>])[0];
      const { url } = (await next()) as { url: string };
      const inUse = () => {
        const m = process.memoryUsage();
        return m.heapUsed + m.arrayBuffers;
      };
      const baseline = inUse();
      let peak = baseline;
      const sample = () => {
        peak = Math.max(peak, inUse());
      };
      const sampler = setInterval(sample, 10);
      let records = 0;
      let last: SourceRecord | undefined;
      try {
        for await (const record of fetchFile({}, url)) {
          if (++records % 64 === 0) sample();
          last = record;
        }
      } finally {
        clearInterval(sampler);
      }
      sample();
      const { served } = (await next()) as { served: number };
      const growthMiB = (peak - baseline) / MiB;
      expect(records).toBe(served);
      expect(records).toBeGreaterThan(30_000);
      expect(JSON.stringify(last)).toContain(`"s-${records - 1}"`);
      expect(growthMiB, `peak growth ${growthMiB.toFixed(1)} MiB (heapUsed + arrayBuffers) for a ${size / MiB} MiB file`).toBeLessThan(64);
    } finally {
      await worker.terminate();
    }
  }, 60_000);

  it("reads a file that is not gzipped as it is", async () => {
    serveFile = (response) => void response.end(documents(3));
    const records = await collect(fetchFile());
    expect(records.map((r) => JSON.stringify(r))).toEqual([0, 1, 2].map((n) => JSON.stringify(JSON.parse(sessionDocument(n)))));
  });

  it("reports a truncated gzip stream as a malformed response, at the compressed bytes read", async () => {
    const whole = gzipped(documents(40));
    const cut = whole.subarray(0, Math.floor(whole.length / 2));
    serveFile = (response) => void response.end(cut);
    const error = await failure(collect(fetchFile()));
    expect(error).toMatchObject({ code: "malformed_response", permanent: false, details: { api: "data-access-agent-activity", byteOffset: cut.length } });
    expect(error.message).toMatch(new RegExp(`gzip stream of ${FILE} is incomplete at byte ${cut.length}`));
  });

  it("reports a corrupt gzip stream as a malformed response", async () => {
    const corrupt = Buffer.from(gzipped(documents(40)));
    corrupt.fill(0xff, 200, 260);
    serveFile = (response) => void response.end(corrupt);
    const error = await failure(collect(fetchFile()));
    expect(error).toMatchObject({ code: "malformed_response", permanent: false });
    expect(error.message).toMatch(new RegExp(`gzip stream of ${FILE} is (corrupt|incomplete)`));
  });

  it("refuses a record above the size limit permanently, not as a malformed response", async () => {
    serveFile = async (response) => {
      async function* oneHugeRecord() {
        yield `${sessionDocument(0)}{"metaData":{"startTime":{"long":${WINDOW.from.getTime()}}},"pad":"`;
        for (let i = 0; i < 65; i++) yield "x".repeat(MiB);
        yield '"}\n';
      }
      await pipeline(Readable.from(oneHugeRecord()), createGzip({ level: 1 }), response);
    };
    const seen: SourceRecord[] = [];
    const error = await failure(
      (async () => {
        for await (const record of fetchFile()) seen.push(record);
      })(),
    );
    expect(seen).toHaveLength(1);
    expect(error).toMatchObject({ code: "record_too_large", permanent: true, details: { api: "data-access-agent-activity", byteOffset: Buffer.byteLength(sessionDocument(0)) } });
    expect(error.message).toMatch(/larger than 64 MiB/);
  });

  it("keeps reading a file that takes longer than the timeout to arrive, as long as data keeps coming", async () => {
    const parts = gzipped(documents(12));
    const pieces = 10;
    serveFile = async (response) => {
      for (let k = 0; k < pieces; k++) {
        response.write(parts.subarray(Math.floor((k * parts.length) / pieces), Math.floor(((k + 1) * parts.length) / pieces)));
        await new Promise((r) => setTimeout(r, 100));
      }
      response.end();
    };
    const started = Date.now();
    const records = await collect(fetchFile({ timeoutMs: 400 }));
    expect(Date.now() - started).toBeGreaterThan(900);
    expect(records).toHaveLength(12);
  });

  it("gives up on a body that stops arriving after the idle timeout, as upstream unavailable", async () => {
    const parts = gzipped(documents(12));
    serveFile = (response) => void response.write(parts.subarray(0, parts.length >> 1));
    const error = await failure(collect(fetchFile({ timeoutMs: 300 })));
    expect(error).toMatchObject({ code: "upstream_unavailable", permanent: false, details: { api: "data-access-agent-activity" } });
    expect(error.message).toMatch(/no data for 300 ms/);
  });

  it("stops the download when the consumer stops early", async () => {
    let closedEarly: Promise<boolean> = Promise.resolve(false);
    serveFile = async (response) => {
      closedEarly = once(response, "close").then(() => !response.writableFinished);
      await pipeline(sessionDocuments(256 * MiB, WINDOW.from.getTime()).stream, createGzip({ level: 1 }), response);
    };
    for await (const record of fetchFile()) {
      expect(record).toBeDefined();
      break;
    }
    expect(await closedEarly).toBe(true);
  });
});
