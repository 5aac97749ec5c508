/**
 * A deliver job taken over while its first worker still delivers (its lock in Redis lapsed: an
 * event loop blocked, or Redis out of that worker's reach, past the lock duration). The second
 * worker must not deliver the same file at the same time; it waits, then finds the run finished.
 */
import { Writable } from "node:stream";
import pg from "pg";
import type { Config } from "@transporter/config";
import { createLogger } from "@transporter/telemetry";
import { describe, expect, it } from "vitest";
import { closeRedis, createRedis, createStageWorker, jobIdFor, JobProducer } from "../src/index.js";
import { startRedisProxy } from "./support/redis-proxy.js";
import { useStageTestEnv } from "./support/stage-env.js";

describe("an exclusive stage (deliver) taken over while its first attempt still runs", () => {
  // A short lock, so BullMQ's stalled-job check (every half lock) takes the job over quickly.
  const env = useStageTestEnv("exclusive", { CONCURRENCY_DELIVER: "1" }, { JOB_LOCK_MS: 2_000 });
  const { prefix, config } = env;
  const newRun = (notifications: Record<string, string> = {}) => env.newRun({ status: "ENCRYPTING", notifications });

  /** A delivery handler that waits for `release()`, counting its calls and how many ran at once. */
  function gatedDelivery() {
    const counts = { deliveries: 0, delivering: 0, mostAtOnce: 0 };
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const handler = async ({ setRunFields }: { setRunFields(fields: Record<string, unknown>): void }) => {
      counts.deliveries += 1;
      counts.delivering += 1;
      counts.mostAtOnce = Math.max(counts.mostAtOnce, counts.delivering);
      await gate;
      counts.delivering -= 1;
      setRunFields({ fileName: "r.csv.pgp", destinationPath: "drop/r.csv.pgp", bytes: 10n });
    };
    return { handler, release, counts };
  }

  it("the second worker waits for the first attempt to end, then finds the run delivered: one delivery, never two at once", async () => {
    const run = await newRun();
    const tenant = { id: run.tenantId };
    const logs: string[] = [];
    const logger = createLogger({ name: "exclusive-test", level: "info", destination: new Writable({ write: (chunk, _enc, done) => void (logs.push(String(chunk)), done()) }) });
    const { handler, release, counts } = gatedDelivery();
    const producer = new JobProducer(env.redis, prefix, { attempts: 3, backoffMs: 10 });
    const first = createStageWorker({ stage: "deliver", config, prisma: env.db.prisma, redis: env.redis, producer, logger, exclusive: true, handler });
    await producer.enqueue("deliver", { runId: run.id, tenantId: tenant.id, encryptedKey: `tenants/${tenant.id}/runs/${run.id}/encrypted/report.csv.pgp` });
    await expect.poll(() => counts.deliveries, { timeout: 10_000 }).toBe(1);

    // The first worker's lock is gone, as when it could not renew it; a second worker takes the job over.
    const second = createStageWorker({ stage: "deliver", config, prisma: env.db.prisma, redis: env.redis, producer, logger, exclusive: true, handler });
    await env.redis.del(`${prefix}:deliver:${jobIdFor("deliver", run.id)}:lock`);
    await expect.poll(() => counts.deliveries > 1 || logs.some((line) => line.includes("another attempt is working on this run")), { timeout: 15_000 }).toBe(true);
    expect(counts.deliveries).toBe(1);

    release();
    // The second attempt's job ends completed (the first's cannot complete it: its lock is gone).
    await expect.poll(async () => (await producer.queue("deliver").getJob(jobIdFor("deliver", run.id)))?.getState(), { timeout: 15_000 }).toBe("completed");
    await Promise.all([first.close(), second.close()]);
    await producer.close();

    expect({ deliveries: counts.deliveries, mostAtOnce: counts.mostAtOnce }).toEqual({ deliveries: 1, mostAtOnce: 1 });
    expect(await env.db.prisma.run.findUniqueOrThrow({ where: { id: run.id } })).toMatchObject({ status: "SUCCEEDED", destinationPath: "drop/r.csv.pgp", notes: [] });
  });

  it("Redis out of the first worker's reach: stopping it keeps its run locked while it delivers, and its notification waiting on Redis does not hold the run", async () => {
    const queuePrefix = `${prefix}-away`;
    const settings: Config = { ...config, REDIS_PREFIX: queuePrefix };
    const run = await newRun({ webhookUrl: "https://hooks.example.test/runs", on: "always" });
    const encryptedKey = `tenants/${run.tenantId}/runs/${run.id}/encrypted/report.csv.pgp`;
    const { handler, release, counts } = gatedDelivery();

    // The first worker reaches Redis through a proxy that is then cut: its lock lapses.
    const proxy = await startRedisProxy(config.REDIS_URL);
    const cutOffRedis = createRedis(proxy.url);
    cutOffRedis.on("error", () => undefined);
    const first = createStageWorker({ stage: "deliver", config: settings, prisma: env.db.prisma, redis: cutOffRedis, exclusive: true, handler });
    const producer = new JobProducer(env.redis, queuePrefix, { attempts: 3, backoffMs: 10 });
    await producer.enqueue("deliver", { runId: run.id, tenantId: run.tenantId, encryptedKey });
    await expect.poll(() => counts.deliveries, { timeout: 10_000 }).toBe(1);
    await proxy.kill();
    // Stopped while it delivers: it gives up on Redis, but its delivery goes on, and so does its hold on the run.
    await first.close();

    const logs: string[] = [];
    const logger = createLogger({ name: "exclusive-test", level: "info", destination: new Writable({ write: (chunk, _enc, done) => void (logs.push(String(chunk)), done()) }) });
    const second = createStageWorker({ stage: "deliver", config: settings, prisma: env.db.prisma, redis: env.redis, producer, logger, exclusive: true, handler });
    await expect.poll(() => logs.some((line) => line.includes("another attempt is working on this run")), { timeout: 15_000 }).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(counts.deliveries).toBe(1);

    // The first attempt ends: the run is delivered, its notification waits for a Redis it cannot reach.
    release();
    await expect.poll(async () => (await producer.queue("deliver").getJob(jobIdFor("deliver", run.id)))?.getState(), { timeout: 15_000 }).toBe("completed");
    // The second attempt found the run finished and queued the notification it still owes.
    expect(await producer.hasJob("notify", run.id)).toBe(true);
    expect({ deliveries: counts.deliveries, mostAtOnce: counts.mostAtOnce }).toEqual({ deliveries: 1, mostAtOnce: 1 });
    expect(await env.db.prisma.run.findUniqueOrThrow({ where: { id: run.id } })).toMatchObject({ status: "SUCCEEDED" });
    await second.close();
    await closeRedis(cutOffRedis);
    await producer.close();
  }, 60_000);

  it("the first attempt's lock lost with its database connection to an attempt waiting elsewhere: the first stops and writes nothing on the run", async () => {
    const run = await newRun();
    const logs: string[] = [];
    const logger = createLogger({ name: "exclusive-test", level: "info", destination: new Writable({ write: (chunk, _enc, done) => void (logs.push(String(chunk)), done()) }) });
    let entered = false;
    const handler = async ({ lockLost }: { lockLost?: AbortSignal }) => {
      entered = true;
      // A delivery under way: it stops only when told its lock is lost.
      await new Promise((_, reject) => lockLost?.addEventListener("abort", () => reject(lockLost.reason)));
    };
    const producer = new JobProducer(env.redis, prefix, { attempts: 3, backoffMs: 10 });
    const worker = createStageWorker({ stage: "deliver", config, prisma: env.db.prisma, redis: env.redis, producer, logger, exclusive: true, handler });
    await producer.enqueue("deliver", { runId: run.id, tenantId: run.tenantId, encryptedKey: `tenants/${run.tenantId}/runs/${run.id}/encrypted/report.csv.pgp` });
    await expect.poll(() => entered, { timeout: 10_000 }).toBe(true);

    // Another process's attempt blocks on the run's lock; the server then ends the first's lock session.
    const other = new pg.Client({ connectionString: env.db.url });
    await other.connect();
    try {
      const taken = other.query("SELECT pg_advisory_lock(hashtextextended($1, 0))", [`transporter:deliver:${run.id}`]);
      await expect.poll(async () => (await env.db.prisma.$queryRawUnsafe<Array<{ n: number }>>(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`))[0]?.n).toBe(1);
      await env.db.prisma.$executeRawUnsafe(
        `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid() AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      );
      await taken;
      await expect.poll(() => logs.some((line) => line.includes("could not take them again; their attempts stop")), { timeout: 10_000 }).toBe(true);
      // The first attempt's failure leaves the run to the attempt that holds it: no error, no retry count, not failed.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await env.db.prisma.run.findUniqueOrThrow({ where: { id: run.id } })).toMatchObject({ status: "DELIVERING", error: null });
    } finally {
      await worker.close();
      await producer.close();
      await other.end();
    }
  }, 30_000);
});
