/**
 * Closing queues and workers that never reached Redis. BullMQ reports a failed start-up by
 * emitting 'error' from its connection wrapper, but its close() removes every listener first: a
 * start-up that fails afterwards (the connection ended while Redis was away) emitted to nobody,
 * which throws, and surfaced as an unhandled rejection (upstream taskforcesh/bullmq#3546) that
 * crashes a process run with --unhandled-rejections=throw, Node's default.
 */
import { createServer, type AddressInfo, type Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createRedis, createWorker, JobProducer, testRedisPrefix } from "../src/index.js";

/**
 * A Redis that is not there yet: its first connection is reset (an 'error' on the client), the
 * next ones are accepted and never answered, so the client is mid-connect when it is closed.
 */
async function unansweringRedis(): Promise<{ url: string; stop(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createServer((socket) => {
    socket.on("error", () => undefined);
    if (++connections === 1) return void socket.resetAndDestroy();
    sockets.add(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe("closing before Redis was ever reached", () => {
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown) => void rejections.push(reason);
  // Vitest's own handler would fail the whole run; this one lets the test name what leaked.
  let others: NodeJS.UnhandledRejectionListener[] = [];
  beforeEach(() => {
    rejections.length = 0;
    others = process.listeners("unhandledRejection");
    process.removeAllListeners("unhandledRejection");
    process.on("unhandledRejection", onRejection);
  });
  afterEach(() => {
    process.off("unhandledRejection", onRejection);
    for (const listener of others) process.on("unhandledRejection", listener);
  });

  it("a producer's queues close, and their connection ends, without an unhandled rejection", async () => {
    const server = await unansweringRedis();
    const redis = createRedis(server.url);
    redis.on("error", () => undefined);
    const producer = new JobProducer(redis, testRedisPrefix("close-before-ready"));
    producer.queue("fetch");
    producer.queue("deliver");
    // A connection attempt fails, the next hangs, while the queues wait for Redis to be ready.
    await sleep(300);
    expect(redis.status).toBe("connect");
    await producer.close();
    redis.disconnect();
    await server.stop();
    await sleep(300);
    expect(redis.status).toBe("end");
    expect(rejections).toEqual([]);
  });

  it("a worker closes, and its connection ends, without an unhandled rejection", async () => {
    const server = await unansweringRedis();
    const redis = createRedis(server.url);
    redis.on("error", () => undefined);
    const worker = createWorker("fetch", async () => undefined, { connection: redis, prefix: testRedisPrefix("close-before-ready"), concurrency: 1 });
    worker.on("error", () => undefined);
    await sleep(300);
    expect(redis.status).toBe("connect");
    await worker.close(true);
    redis.disconnect();
    await server.stop();
    await sleep(300);
    expect(redis.status).toBe("end");
    expect(rejections).toEqual([]);
  });
});
