import { testConfig, type Config } from "@transporter/config";
import { createTestDatabase, type TestDatabase } from "@transporter/db/testing";
import { afterAll, beforeAll } from "vitest";
import { createRedis, testRedisPrefix, type Redis } from "../../src/index.js";

export interface StageTestEnv {
  readonly db: TestDatabase;
  readonly redis: Redis;
  readonly prefix: string;
  readonly config: Config;
  /** A run of a new tenant's managed-destination task, in `status` (PENDING unless given). */
  newRun(options?: { status?: "PENDING" | "ENCRYPTING"; createdAt?: Date; notifications?: Record<string, string> }): ReturnType<TestDatabase["prisma"]["run"]["create"]>;
}

/** A database and a Redis prefix of the test file's own, made before its tests and removed after. */
export function useStageTestEnv(name: string, settings: Record<string, string> = {}, more: Partial<Config> = {}): StageTestEnv {
  const prefix = testRedisPrefix(name);
  const config: Config = { ...testConfig({ REDIS_PREFIX: prefix, ...settings }), ...more };
  let db: TestDatabase;
  let redis: Redis;
  beforeAll(async () => {
    db = await createTestDatabase();
    redis = createRedis(config.REDIS_URL);
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
    await db.drop();
  });
  return {
    get db() {
      return db;
    },
    get redis() {
      return redis;
    },
    prefix,
    config,
    async newRun({ status = "PENDING", createdAt = new Date(), notifications = {} } = {}) {
      const tenant = await db.prisma.tenant.create({ data: { accountId: `a${Math.random()}`, name: "t", timezone: "UTC" } });
      const destination = await db.prisma.destination.create({ data: { tenantId: tenant.id, name: "m", kind: "managed", config: {} } });
      const task = await db.prisma.task.create({ data: { tenantId: tenant.id, description: "d", reportId: "messaging-conversations", format: "csv", frequency: "daily", time: "00:00", destinationId: destination.id, notifications, enabled: false } });
      return db.prisma.run.create({
        data: {
          tenantId: tenant.id, taskId: task.id, windowStart: new Date(0), windowEnd: new Date(86_400_000), scheduledFor: createdAt, createdAt, trigger: "manual", status,
          ...(status === "ENCRYPTING" ? { encryptFinishedAt: new Date() } : {}),
        },
      });
    },
  } as StageTestEnv;
}
