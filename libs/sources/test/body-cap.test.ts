import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { PlatformHttp, type CallContext, type HttpOptions } from "../src/index.js";
import { failure } from "./helpers.js";

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;
const URL_ = "http://platform.test/messaging_history/api/account/123/conversations/search?offset=0&limit=100";

/**
 * A 200 whose body is served in 64 KiB chunks as it is read: `totalBytes` in all (then it ends),
 * or none after `stallAfter` bytes (then it waits for the request's abort). Counts what was pulled.
 */
function streamingFetch(body: { totalBytes: number; stallAfter?: number; status?: number }) {
  const seen = { pulled: 0, cancelled: false, requests: 0 };
  const fetch = (async (_url: string | URL | Request, init?: RequestInit) => {
    seen.requests++;
    const signal = init?.signal;
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (body.stallAfter !== undefined && sent >= body.stallAfter) {
          // Like a connection that goes quiet: only the request's abort ends it.
          await new Promise<void>((resolve) => signal?.addEventListener("abort", () => resolve(), { once: true }));
          controller.error(signal?.reason ?? new Error("aborted"));
          return;
        }
        if (sent >= body.totalBytes) return controller.close();
        const size = Math.min(CHUNK, body.totalBytes - sent);
        sent += size;
        seen.pulled += size;
        controller.enqueue(new Uint8Array(size).fill(0x20));
      },
      cancel() {
        seen.cancelled = true;
      },
    }, { highWaterMark: 0 });
    return new Response(stream, { status: body.status ?? 200, headers: { "content-type": "application/json" } });
  }) as typeof globalThis.fetch;
  return { fetch, seen };
}

function client(fetch: typeof globalThis.fetch, options: HttpOptions & { maxBodyBytes?: number } = {}) {
  let calls = 0;
  const http = new PlatformHttp({ fetch, timeoutMs: 5_000, maxAttempts: 2, sleep: async () => {}, ...options });
  const ctx: CallContext = { accountId: "123", credentials: { consumerKey: "k", consumerSecret: "s", token: "t", tokenSecret: "ts" }, api: "messaging-interactions", onCall: () => calls++ };
  return { http, ctx, calls: () => calls };
}

describe("response body size cap", () => {
  it("stops reading a page past maxBodyBytes and fails permanently, without buffering the rest", async () => {
    // 8 MiB available (so code without a cap ends instead of reading forever), cap at 1 MiB.
    const { fetch, seen } = streamingFetch({ totalBytes: 8 * MiB });
    const { http, ctx, calls } = client(fetch, { maxBodyBytes: MiB });
    const error = await failure(http.send(ctx, "POST", URL_, {}));
    expect(error).toMatchObject({ code: "response_too_large", permanent: true, details: { api: "messaging-interactions" } });
    expect(error.message).toMatch(/larger than 1 MiB/);
    // Read only up to the first chunk past the cap, then the download was cancelled; not retried.
    expect(seen.pulled).toBeLessThanOrEqual(MiB + CHUNK);
    expect(seen.cancelled).toBe(true);
    expect(calls()).toBe(1);
  });

  it("names the cap in bytes when it is not a whole number of MiB", async () => {
    const { fetch } = streamingFetch({ totalBytes: 4 * CHUNK });
    const { http, ctx } = client(fetch, { maxBodyBytes: 100_000 });
    const error = await failure(http.send(ctx, "POST", URL_, {}));
    expect(error).toMatchObject({ code: "response_too_large", permanent: true });
    expect(error.message).toMatch(/larger than 100000 bytes/);
  });

  it("reads a body up to the cap whole", async () => {
    const { fetch } = streamingFetch({ totalBytes: 16 * CHUNK });
    const { http, ctx } = client(fetch, { maxBodyBytes: 16 * CHUNK });
    const response = await http.send(ctx, "POST", URL_, {});
    expect(response.body.length).toBe(16 * CHUNK);
  });

  it("reads only the start of an endless error body, and the error is handled as usual", async () => {
    const { fetch, seen } = streamingFetch({ totalBytes: 8 * MiB, status: 503 });
    const { http, ctx } = client(fetch, { maxBodyBytes: MiB });
    const error = await failure(http.send(ctx, "POST", URL_, {}));
    expect(error).toMatchObject({ code: "upstream_unavailable", permanent: false });
    expect(error.message).toMatch(/HTTP 503 after 2 attempts/);
    expect(seen.pulled).toBeLessThanOrEqual(2 * (64 * 1024 + CHUNK));
    expect(seen.cancelled).toBe(true);
  });

  it("closes a real connection that keeps sending past the cap", async () => {
    let closed!: () => void;
    const connectionClosed = new Promise<void>((resolve) => (closed = resolve));
    const server = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      const chunk = Buffer.alloc(CHUNK, 0x20);
      // 32 MiB, far past the cap (and an end, so code without a cap fails instead of reading forever).
      let sent = 0;
      const pump = () => {
        while (!res.destroyed && sent < 32 * MiB) {
          sent += CHUNK;
          if (!res.write(chunk)) return;
        }
        if (!res.destroyed) res.end();
      };
      res.on("drain", pump);
      res.on("close", () => closed());
      pump();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { http, ctx } = client(globalThis.fetch, { maxBodyBytes: 2 * MiB });
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/search`;
      const error = await failure(http.send(ctx, "POST", url, {}));
      expect(error).toMatchObject({ code: "response_too_large", permanent: true });
      await connectionClosed;
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("still times out a body that stops arriving part-way (retried, then upstream_unavailable)", async () => {
    const { fetch, seen } = streamingFetch({ totalBytes: 8 * MiB, stallAfter: 2 * CHUNK });
    const { http, ctx } = client(fetch, { maxBodyBytes: MiB, timeoutMs: 150 });
    const error = await failure(http.send(ctx, "POST", URL_, {}));
    expect(error).toMatchObject({ code: "upstream_unavailable", permanent: false });
    expect(error.message).toMatch(/no answer within 150 ms after 2 attempts/);
    expect(seen.requests).toBe(2);
  });
});
