import type { Config } from "@transporter/config";
import { createPrisma, idleConnectionClosed } from "@transporter/db";
import type { Db } from "@transporter/db";
import { closeRedis, createRedis, createStageWorker, logConnectionOutages } from "@transporter/queue";
import type { JobProducer, Redis } from "@transporter/queue";
import { createStagingStore } from "@transporter/storage";
import type { StagingStore } from "@transporter/storage";
import { createLogger } from "@transporter/telemetry";
import type { Logger } from "@transporter/telemetry";
import { createEncryptHandler } from "./encrypt.js";

export { createEncryptHandler, encryptedFileName, encryptionOptions, type EncryptDeps, type EncryptionTaskOptions } from "./encrypt.js";

export interface EncryptorDeps {
  prisma?: Db;
  redis?: Redis;
  staging?: StagingStore;
  producer?: JobProducer;
  logger?: Logger;
}

/**
 * The encryptor: an `encrypt` stage worker (report file → OpenPGP message in staging, then
 * `deliver`). Anything not passed in is built from the config and closed again by stop().
 */
export async function start(config: Config, deps: EncryptorDeps = {}): Promise<{ stop(): Promise<void> }> {
  const owned: Array<() => Promise<void>> = [];
  const logger = deps.logger ?? createLogger({ name: "encryptor", level: config.LOG_LEVEL });
  const prisma = deps.prisma ?? createPrisma(config.DATABASE_URL, { poolSize: config.DATABASE_POOL_SIZE, onIdleError: idleConnectionClosed(logger) });
  if (!deps.prisma) owned.push(() => prisma.$disconnect());
  const redis = deps.redis ?? createRedis(config.REDIS_URL);
  // A plain disconnect when Redis is gone: QUIT would wait for it.
  if (!deps.redis) {
    logConnectionOutages(redis, logger, "encryptor");
    owned.push(() => closeRedis(redis));
  }
  const staging = deps.staging ?? createStagingStore(config);

  const encryptWorker = createStageWorker({
    stage: "encrypt",
    config,
    prisma,
    redis,
    logger,
    ...(deps.producer ? { producer: deps.producer } : {}),
    handler: createEncryptHandler({ prisma, staging }),
  });

  return {
    async stop() {
      await encryptWorker.close();
      for (const close of owned.reverse()) await close();
    },
  };
}
