import type { Config } from "@transporter/config";
import { createPrisma, idleConnectionClosed } from "@transporter/db";
import type { Db } from "@transporter/db";
import { closeRedis, createRedis, createStageWorker, logConnectionOutages } from "@transporter/queue";
import type { JobProducer, Redis } from "@transporter/queue";
import { createStagingStore } from "@transporter/storage";
import type { StagingStore } from "@transporter/storage";
import { createLogger } from "@transporter/telemetry";
import type { Logger } from "@transporter/telemetry";
import { TransformPool } from "@transporter/reports";
import { createTransformHandler } from "./transform.js";

export { createTransformHandler, reportOptions, skippedRecordsNote, SKIPPED_NOTE_PREFIX, type ReportTaskOptions, type TransformDeps } from "./transform.js";

export interface TransformerDeps {
  prisma?: Db;
  redis?: Redis;
  staging?: StagingStore;
  /** Worker threads for CSV and NDJSON; by default TRANSFORM_THREADS of them (none if 0). */
  pool?: TransformPool | null;
  producer?: JobProducer;
  logger?: Logger;
}

/**
 * The transformer: a `transform` stage worker (raw records → report file in staging, then
 * `encrypt`), with a pool of worker threads for the text formats. Anything not passed in is
 * built from the config and closed again by stop().
 */
export async function start(config: Config, deps: TransformerDeps = {}): Promise<{ stop(): Promise<void> }> {
  const owned: Array<() => Promise<void>> = [];
  const logger = deps.logger ?? createLogger({ name: "transformer", level: config.LOG_LEVEL });
  const prisma = deps.prisma ?? createPrisma(config.DATABASE_URL, { poolSize: config.DATABASE_POOL_SIZE, onIdleError: idleConnectionClosed(logger) });
  if (!deps.prisma) owned.push(() => prisma.$disconnect());
  const redis = deps.redis ?? createRedis(config.REDIS_URL);
  // A plain disconnect when Redis is gone: QUIT would wait for it.
  if (!deps.redis) {
    logConnectionOutages(redis, logger, "transformer");
    owned.push(() => closeRedis(redis));
  }
  const staging = deps.staging ?? createStagingStore(config);
  let pool = deps.pool ?? null;
  if (deps.pool === undefined && config.TRANSFORM_THREADS > 0) {
    const ownPool = new TransformPool({ threads: config.TRANSFORM_THREADS });
    owned.push(() => ownPool.close());
    try {
      // A thread that cannot load the report code fails the start, not the first run.
      await ownPool.warmUp();
    } catch (error) {
      for (const close of owned.reverse()) await close().catch(() => undefined);
      throw error;
    }
    pool = ownPool;
  }

  const transformWorker = createStageWorker({
    stage: "transform",
    config,
    prisma,
    redis,
    logger,
    ...(deps.producer ? { producer: deps.producer } : {}),
    handler: createTransformHandler({ prisma, staging, pool }),
  });

  return {
    async stop() {
      await transformWorker.close();
      for (const close of owned.reverse()) await close();
    },
  };
}
