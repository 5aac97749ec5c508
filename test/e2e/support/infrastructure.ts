import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig, type Config } from "@transporter/config";
import { createTestDatabase, type TestDatabase } from "@transporter/db/testing";
import { createRedis, testRedisPrefix, type Redis } from "@transporter/queue";
import { startSimulator, type Simulator } from "@transporter/simulator";
import { startS3rver, type S3rverHandle } from "../../../libs/storage/test/support/s3rver.js";
import { freePort } from "./processes.js";

export interface InfrastructureOptions {
  /** Short name used in the Redis prefix and temp folders. */
  name: string;
  /** Overrides of the service environment (e.g. concurrency, lock durations). */
  env?: Record<string, string>;
}

/**
 * Everything the services need around them, fresh for one test file: a migrated PostgreSQL
 * database, a Redis key prefix of its own, s3rver with a staging bucket (so workers on
 * "different machines" share staging), a managed-storage folder, the platform simulator, a
 * random secrets master key, and a free gateway port. `env` is the complete environment of
 * every service process; `config` is the same environment parsed (for in-process use).
 */
export interface Infrastructure {
  db: TestDatabase;
  redisPrefix: string;
  /** A connection of the test's own (inspecting queues), closed by stop(). */
  redis: Redis;
  s3: S3rverHandle;
  stagingBucket: string;
  managedDir: string;
  simulator: Simulator;
  gatewayUrl: string;
  env: Record<string, string>;
  config: Config;
  stop(): Promise<void>;
}

export async function startInfrastructure(options: InfrastructureOptions): Promise<Infrastructure> {
  const cleanup: Array<() => Promise<unknown>> = [];
  const stop = async () => {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
    cleanup.length = 0;
  };
  try {
    const db = await createTestDatabase();
    cleanup.push(() => db.drop());
    const stagingBucket = "staging";
    const s3 = await startS3rver({ buckets: [stagingBucket] });
    cleanup.push(() => s3.stop());
    const simulator = await startSimulator({ port: 0, host: "127.0.0.1" });
    cleanup.push(() => simulator.stop());
    const dataDir = await mkdtemp(join(tmpdir(), `e2e-${options.name}-`));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    const managedDir = join(dataDir, "managed");
    const redisPrefix = testRedisPrefix(options.name);
    const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
    const redis = createRedis(redisUrl);
    cleanup.push(() => deleteRedisPrefix(redis, redisPrefix).finally(() => redis.quit()));
    const gatewayPort = await freePort();

    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: process.env.HOME ?? tmpdir(),
      NODE_ENV: "test",
      LOG_LEVEL: "warn",
      DATABASE_URL: db.url,
      DATABASE_POOL_SIZE: "3",
      REDIS_URL: redisUrl,
      REDIS_PREFIX: redisPrefix,
      SECRETS_MASTER_KEYS: `e2e:${randomBytes(32).toString("base64")}`,
      GATEWAY_HOST: "127.0.0.1",
      GATEWAY_PORT: String(gatewayPort),
      API_RATE_LIMIT_PER_MINUTE: "100000",
      STAGING_DRIVER: "s3",
      STAGING_S3_BUCKET: stagingBucket,
      STAGING_S3_ENDPOINT: s3.endpoint,
      STAGING_S3_REGION: s3.region,
      STAGING_S3_ACCESS_KEY_ID: s3.accessKeyId,
      STAGING_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
      STAGING_S3_FORCE_PATH_STYLE: "true",
      MANAGED_DRIVER: "fs",
      MANAGED_DIR: managedDir,
      PLATFORM_CSDS_URL: simulator.url,
      // The Data Access API has no CSDS entry (its host is regional): point it at the simulator too.
      PLATFORM_DATA_ACCESS_URL: simulator.url,
      PLATFORM_RATE_PER_SECOND: "1000",
      ALLOW_INSECURE_ENDPOINTS: "true",
      SCHEDULER_TICK_MS: "500",
      RECONCILER_INTERVAL_MS: "2000",
      RECONCILER_GRACE_MS: "10000",
      JOB_BACKOFF_MS: "200",
      // A SIGKILLed worker's job goes to another worker once its lock expires.
      JOB_LOCK_MS: "5000",
      ...options.env,
    };
    const config = loadConfig(env);
    return { db, redisPrefix, redis, s3, stagingBucket, managedDir, simulator, gatewayUrl: `http://127.0.0.1:${gatewayPort}`, env, config, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Removes every key under a test's Redis prefix (SCAN, never KEYS). */
export async function deleteRedisPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== "0");
}
