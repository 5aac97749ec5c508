import type { Config } from "@transporter/config";
import { keyringFromConfig, type Keyring } from "@transporter/crypto";
import { createPrisma, idleConnectionClosed, type Db } from "@transporter/db";
import { closeRedis, createRedis, createStageWorker, logConnectionOutages, type JobProducer, type Redis } from "@transporter/queue";
import { platformFromConfig, type Platform } from "@transporter/sources";
import { createStagingStore, type StagingStore } from "@transporter/storage";
import { createLogger, type Logger } from "@transporter/telemetry";
import { createFetchHandler } from "./fetch.js";

export { createFetchHandler, sourceCredentialsContext, type FetchDeps } from "./fetch.js";

export interface FetcherDeps {
  prisma?: Db;
  redis?: Redis;
  staging?: StagingStore;
  producer?: JobProducer;
  logger?: Logger;
  platform?: Platform;
  keyring?: Keyring;
}

/**
 * The fetcher: a `fetch` stage worker (source API → raw NDJSON in staging, then `transform`).
 * The platform client paces every request through the per-account Redis token bucket, so all
 * fetcher replicas together stay within one account's budget.
 */
export async function start(config: Config, deps: FetcherDeps = {}): Promise<{ stop(): Promise<void> }> {
  const owned: Array<() => Promise<void>> = [];
  const logger = deps.logger ?? createLogger({ name: "fetcher", level: config.LOG_LEVEL });
  const prisma = deps.prisma ?? createPrisma(config.DATABASE_URL, { poolSize: config.DATABASE_POOL_SIZE, onIdleError: idleConnectionClosed(logger) });
  if (!deps.prisma) owned.push(() => prisma.$disconnect());
  const redis = deps.redis ?? createRedis(config.REDIS_URL);
  // A plain disconnect when Redis is gone: QUIT would wait for it.
  if (!deps.redis) {
    logConnectionOutages(redis, logger, "fetcher");
    owned.push(() => closeRedis(redis));
  }
  const staging = deps.staging ?? createStagingStore(config);
  const platform = deps.platform ?? platformFromConfig(config, redis);
  const keyring = deps.keyring ?? keyringFromConfig(config);

  const fetchWorker = createStageWorker({
    stage: "fetch",
    config,
    prisma,
    redis,
    logger,
    ...(deps.producer ? { producer: deps.producer } : {}),
    handler: createFetchHandler({ prisma, staging, platform, keyring }),
  });

  return {
    async stop() {
      await fetchWorker.close();
      for (const close of owned.reverse()) await close();
    },
  };
}
