import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig, type Config } from "@transporter/config";
import { keyringFromConfig, sealJson } from "@transporter/crypto";
import { createTestDatabase, type TestDatabase } from "@transporter/db/testing";
import { createRedis, JobProducer, testRedisPrefix, type Redis } from "@transporter/queue";
import { startSimulator, type Simulator } from "@transporter/simulator";
import { createPlatform, createRateBudget } from "@transporter/sources";
import { createStagingStore } from "@transporter/storage";
import { start, sourceCredentialsContext } from "../src/index.js";

/** Most requests seen in any sliding window of `ms`. */
function peak(times: number[], ms: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= ms) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

describe("two fetchers, one tenant", () => {
  const RATE = 10;
  let db: TestDatabase;
  let sim: Simulator;
  let redis: Redis;
  let config: Config;
  let producer: JobProducer;
  let prefix: string;
  let workDir: string;
  const services: Array<{ stop(): Promise<void> }> = [];
  const connections: Redis[] = [];

  beforeAll(async () => {
    workDir = await mkdtemp(join(tmpdir(), "tp-fetcher-rate-"));
    [db, sim] = await Promise.all([createTestDatabase(), startSimulator({ seed: "fetcher-rate" })]);
    prefix = testRedisPrefix("fetcher-rate");
    config = testConfig({ DATABASE_URL: db.url, REDIS_PREFIX: prefix, STAGING_DIR: join(workDir, "staging"), CONCURRENCY_FETCH: "1", PLATFORM_RATE_PER_SECOND: String(RATE) });
    redis = createRedis(config.REDIS_URL);
    producer = new JobProducer(redis, prefix, { attempts: 2, backoffMs: 20 });
    // Two replicas: each its own Redis connections and platform client; the budget key is shared.
    for (let i = 0; i < 2; i++) {
      const connection = createRedis(config.REDIS_URL);
      connections.push(connection);
      const platform = createPlatform({ csdsUrl: sim.url, allowInsecure: true, http: { budget: createRateBudget(connection, { prefix: `${prefix}:source-rate`, ratePerSecond: RATE }) } });
      services.push(await start(config, { prisma: db.prisma, redis: connection, producer, platform, staging: createStagingStore(config) }));
    }
  }, 120_000);

  afterAll(async () => {
    for (const s of services) await s.stop();
    for (const c of connections) await c.quit();
    await producer?.close();
    if (redis) {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
    }
    await sim?.stop();
    await db?.drop();
    await rm(workDir, { recursive: true, force: true });
  });

  it("stay within the account's rate budget together", async () => {
    const prisma = db.prisma;
    // A fixed account (the simulator is this file's own): its data, so the number of requests, is the same every run.
    const accountId = "7712345";
    const credentials = { consumerKey: randomBytes(6).toString("hex"), consumerSecret: randomBytes(8).toString("hex"), token: randomBytes(6).toString("hex"), tokenSecret: randomBytes(8).toString("hex") };
    sim.control.registerAccount(accountId, { ...credentials, volume: { conversations: 600 } });
    const tenant = await prisma.tenant.create({ data: { name: "Rate brand", accountId, timezone: "UTC" } });
    const destination = await prisma.destination.create({ data: { tenantId: tenant.id, name: "managed", kind: "managed", config: {} } });
    const sourceId = randomUUID();
    await prisma.source.create({
      data: { id: sourceId, tenantId: tenant.id, name: "platform", kind: "liveperson", accountId, sealedCredentials: sealJson(credentials, keyringFromConfig(config), sourceCredentialsContext(tenant.id, sourceId)) },
    });
    const runs = [];
    for (const [from, to] of [["2026-10-10T00:00:00Z", "2026-10-10T06:00:00Z"], ["2026-10-11T00:00:00Z", "2026-10-11T06:00:00Z"]] as const) {
      const task = await prisma.task.create({ data: { tenantId: tenant.id, description: `rate ${from}`, reportId: "messaging-conversations", format: "csv", frequency: "daily", time: "00:00", sourceId, destinationId: destination.id } });
      runs.push(await prisma.run.create({ data: { tenantId: tenant.id, taskId: task.id, windowStart: new Date(from), windowEnd: new Date(to), scheduledFor: new Date(to), trigger: "manual" } }));
    }
    await Promise.all(runs.map((run) => producer.enqueue("fetch", { runId: run.id, tenantId: tenant.id })));
    for (let i = 0; i < 600; i++) {
      const done = await prisma.run.count({ where: { id: { in: runs.map((r) => r.id) }, OR: [{ fetchFinishedAt: { not: null } }, { status: "FAILED" }] } });
      if (done === runs.length) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const finished = await prisma.run.findMany({ where: { id: { in: runs.map((r) => r.id) } } });
    for (const run of finished) expect(run).toMatchObject({ status: "FETCHING", error: null });
    const requests = sim.control.requestLog(accountId).filter((r) => r.api === "messaging-interactions");
    expect(requests.length).toBe(finished.reduce((sum, r) => sum + (r.sourceCalls ?? 0), 0));
    expect(requests.length).toBeGreaterThan(3 * RATE);
    // Token bucket: at most burst (= rate) + rate·1 s in any second, plus what up to half a second
    // of arrival jitter on a loaded machine can squeeze in. Unbudgeted, two fetchers send several
    // times that (the simulator answers in a few milliseconds).
    expect(peak(requests.map((r) => r.at), 1000)).toBeLessThanOrEqual(2 * RATE + RATE / 2);
  }, 60_000);
});
