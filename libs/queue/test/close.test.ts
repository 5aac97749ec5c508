/**
 * Closing workers and connections when Redis may be gone. Our connections never give up on a
 * command (`maxRetriesPerRequest: null`), and BullMQ's graceful close needs Redis: without a
 * bound, a worker's close waited for Redis to come back, however long that took.
 */
import { Queue, Worker } from "bullmq";
import type { RedisOptions } from "ioredis";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { closeRedis, closeWorker, createRedis, createWorker, REDIS_GONE_MS, testRedisPrefix, type Redis } from "../src/index.js";
import { startRedisProxy, type RedisProxy } from "./support/redis-proxy.js";

const GONE_MS = 500;
const QUEUE = "close-test";

describe("closing while Redis may be gone", () => {
  const prefix = testRedisPrefix("close");
  let direct: Redis;
  let queue: Queue;
  const cleanups: Array<() => unknown> = [];

  beforeAll(() => {
    direct = createRedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
    queue = new Queue(QUEUE, { connection: direct, prefix });
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  afterAll(async () => {
    await queue.close();
    let cursor = "0";
    do {
      const [next, keys] = await direct.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await direct.unlink(...keys);
    } while (cursor !== "0");
    await direct.quit();
  });

  /** A worker connected through a proxy of its own, running `handler`; waits until it is taking jobs. */
  async function workerBehindProxy(handler: () => Promise<unknown>, redisOptions: RedisOptions = {}): Promise<{ worker: Worker; redis: Redis; proxy: RedisProxy }> {
    const proxy = await startRedisProxy();
    const redis = createRedis(proxy.url, redisOptions);
    redis.on("error", () => undefined);
    const worker = new Worker(QUEUE, handler, { connection: redis, prefix, lockDuration: 30_000 });
    worker.on("error", () => undefined);
    cleanups.push(async () => {
      await worker.close(true);
      redis.disconnect();
      await proxy.kill();
    });
    await worker.waitUntilReady();
    return { worker, redis, proxy };
  }

  /** A job the worker has taken, whose handler runs until `release()`. */
  function pendingHandler() {
    let release = () => {};
    let started = () => {};
    const running = new Promise<void>((resolve) => (started = resolve));
    const handler = () =>
      new Promise<string>((resolve) => {
        release = () => resolve("done");
        started();
      });
    cleanups.push(() => release());
    return { handler, running, release: () => release() };
  }

  async function timed<T>(work: Promise<T>): Promise<{ value: T; ms: number }> {
    const started = Date.now();
    const value = await work;
    return { value, ms: Date.now() - started };
  }

  it("while Redis is there, waits for the job under way (longer than the bound) to finish", async () => {
    const job = pendingHandler();
    const { worker, redis } = await workerBehindProxy(job.handler);
    const added = await queue.add("slow", {});
    await job.running;
    setTimeout(() => job.release(), GONE_MS * 3);
    const { value, ms } = await timed(closeWorker(worker, redis, { goneMs: GONE_MS }));
    expect(value).toBe("closed");
    expect(ms).toBeGreaterThanOrEqual(GONE_MS * 3 - 100);
    expect(await queue.getJobState(added.id!)).toBe("completed");
  });

  it("Redis gone before the close: closes without waiting for the job, which stays active for another worker", async () => {
    const job = pendingHandler();
    const { worker, redis, proxy } = await workerBehindProxy(job.handler);
    const added = await queue.add("cut-off", {});
    await job.running;
    await proxy.kill();
    await vi.waitFor(() => expect(redis.status).not.toBe("ready"));
    const { value, ms } = await timed(closeWorker(worker, redis, { goneMs: GONE_MS }));
    expect(value).toBe("forced");
    expect(ms).toBeLessThan(GONE_MS + 2_000);
    // Not failed: its lock lapses and the stalled-job check hands it to another worker.
    expect(await queue.getJobState(added.id!)).toBe("active");
  });

  it("Redis lost during the graceful close: stops waiting for it", async () => {
    const job = pendingHandler();
    const { worker, redis, proxy } = await workerBehindProxy(job.handler);
    const added = await queue.add("lost", {});
    await job.running;
    const closing = timed(closeWorker(worker, redis, { goneMs: GONE_MS }));
    await sleep(GONE_MS);
    await proxy.kill();
    // Finishing now does not help: its completion would need Redis.
    job.release();
    const { value, ms } = await closing;
    expect(value).toBe("abandoned");
    expect(ms).toBeLessThan(GONE_MS * 2 + 2_000);
    expect(await queue.getJobState(added.id!)).toBe("active");
  });

  it("a job that finishes once the close gave up on Redis does not retry its completion in a busy loop", async () => {
    const job = pendingHandler();
    // No reconnecting: the connection ends with the proxy, and its commands then fail at once.
    // (A job completing on an ended connection after BullMQ's graceful close() had begun retried
    // without pause, for ever, and starved the event loop.)
    const { worker, redis, proxy } = await workerBehindProxy(job.handler, { retryStrategy: () => null });
    await queue.add("late", {});
    await job.running;
    const closing = closeWorker(worker, redis, { goneMs: GONE_MS });
    await sleep(100);
    await proxy.kill();
    expect(await closing).toBe("abandoned");
    expect(redis.status).toBe("end");
    job.release();
    // Timers still run: the event loop is not kept busy.
    const started = Date.now();
    await sleep(200);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("createWorker's workers close like this: close() returns while Redis is gone, saying it cut jobs off", async () => {
    const proxy = await startRedisProxy();
    const redis = createRedis(proxy.url);
    redis.on("error", () => undefined);
    const worker = createWorker("fetch", async () => undefined, { connection: redis, prefix, concurrency: 1 });
    worker.on("error", () => undefined);
    cleanups.push(async () => {
      redis.disconnect();
      await proxy.kill();
    });
    await worker.waitUntilReady();
    await proxy.kill();
    await vi.waitFor(() => expect(redis.status).not.toBe("ready"));
    const { ms } = await timed(worker.close());
    expect(worker.closeOutcome).toBe("forced");
    expect(ms).toBeLessThan(REDIS_GONE_MS + 2_000);
  });

  it("closeRedis: QUIT while Redis answers; a prompt disconnect, not a QUIT queued for ever, when it is gone", async () => {
    const up = createRedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
    await up.ping();
    await closeRedis(up);
    await vi.waitFor(() => expect(up.status).toBe("end"));

    const proxy = await startRedisProxy();
    const gone = createRedis(proxy.url);
    gone.on("error", () => undefined);
    await gone.ping();
    await proxy.kill();
    await sleep(200);
    // A command waiting in the offline queue (as /readyz's PING did): QUIT would queue behind it.
    void gone.ping().catch(() => undefined);
    const { ms } = await timed(closeRedis(gone, { goneMs: GONE_MS }));
    expect(ms).toBeLessThan(GONE_MS + 500);
    expect(gone.status).not.toBe("ready");
  });
});
