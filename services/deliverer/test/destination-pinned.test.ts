/**
 * A run delivers to the destination its delivery began with: a retry after the file landed (its
 * completion lost with a dropped connection) goes to the same place, even though the task was
 * pointed at another destination meanwhile.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { z } from "zod";
import { testConfig } from "@transporter/config";
import { createTestDatabase, failStatements, type TestDatabase } from "@transporter/db/testing";
import { closeRedis, createRedis, createStageWorker, jobIdFor, JobProducer, testRedisPrefix, type Redis } from "@transporter/queue";
import { FsStagingStore } from "@transporter/storage";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDeliverHandler } from "../src/index.js";

describe("the destination a run delivers to", () => {
  let db: TestDatabase;
  let redis: Redis;
  let workDir: string;
  const prefix = testRedisPrefix("destination-pinned");
  const config = testConfig({ REDIS_PREFIX: prefix, JOB_ATTEMPTS: "3", JOB_BACKOFF_MS: "10" });
  beforeAll(async () => {
    db = await createTestDatabase();
    redis = createRedis(config.REDIS_URL);
    workDir = await mkdtemp(join(tmpdir(), "tp-destination-pinned-"));
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    await closeRedis(redis);
    await db.drop();
    await rm(workDir, { recursive: true, force: true });
  });

  it("is pinned when its delivery begins: a retry after the file landed goes there, not where the task was pointed since", async () => {
    const prisma = db.prisma;
    const tenant = await prisma.tenant.create({ data: { accountId: `a${Math.random()}`, name: "t", timezone: "UTC" } });
    const one = await prisma.destination.create({ data: { tenantId: tenant.id, name: "one", kind: "s3", config: { bucket: "one" } } });
    const two = await prisma.destination.create({ data: { tenantId: tenant.id, name: "two", kind: "s3", config: { bucket: "two" } } });
    const task = await prisma.task.create({ data: { tenantId: tenant.id, description: "d", reportId: "messaging-conversations", format: "csv", frequency: "daily", time: "00:00", destinationId: one.id, enabled: false } });
    const run = await prisma.run.create({ data: { tenantId: tenant.id, taskId: task.id, windowStart: new Date(0), windowEnd: new Date(86_400_000), scheduledFor: new Date(), trigger: "manual", status: "ENCRYPTING", encryptFinishedAt: new Date() } });
    const staging = new FsStagingStore(join(workDir, "staging"));
    const encryptedKey = `tenants/${tenant.id}/runs/${run.id}/encrypted/report.csv.pgp`;
    await staging.put(encryptedKey, Readable.from([Buffer.from("pgp-bytes")]));

    // An adapter that records where each attempt's file lands.
    const landed: string[] = [];
    const adapter = {
      kind: "s3", configSchema: z.object({ bucket: z.string() }), credentialsSchema: z.any(),
      verify: async () => ({ ok: true }),
      deliver: async (body: Readable, fileName: string, _meta: unknown, settings: { bucket: string }) => {
        let bytes = 0;
        for await (const chunk of body) bytes += (chunk as Buffer).length;
        landed.push(`${settings.bucket}/${fileName}`);
        // While the first attempt's file lands, the admin points the task elsewhere.
        if (landed.length === 1) await prisma.task.update({ where: { id: task.id }, data: { destinationId: two.id } });
        return { path: `${settings.bucket}/${fileName}`, bytes, checksum: "x", notes: [] };
      },
    };
    // The database drops the first attempt's completion (a connection cut mid-statement).
    const blip = failStatements(prisma, /status = 'SUCCEEDED'/);
    const producer = new JobProducer(redis, prefix, { attempts: 3, backoffMs: 10 });
    const worker = createStageWorker({
      stage: "deliver", config, prisma, redis, producer, exclusive: true,
      handler: createDeliverHandler({ config, prisma, keyring: {} as never, staging, registry: { adapterFor: () => adapter as never } }),
    });
    try {
      await producer.enqueue("deliver", { runId: run.id, tenantId: tenant.id, encryptedKey });
      await expect.poll(async () => (await producer.queue("deliver").getJob(jobIdFor("deliver", run.id)))?.getState(), { timeout: 20_000 }).toBe("completed");
    } finally {
      blip.restore();
      await worker.close();
      await producer.close();
    }
    expect(blip.failed()).toBe(1);
    expect(landed).toEqual(["one/report.csv.pgp", "one/report.csv.pgp"]);
    expect(await prisma.run.findUniqueOrThrow({ where: { id: run.id } })).toMatchObject({ status: "SUCCEEDED", destinationId: one.id, destinationPath: "one/report.csv.pgp" });
  }, 60_000);
});
