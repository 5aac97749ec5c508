import type { Config } from "@transporter/config";
import { keyringFromConfig } from "@transporter/crypto";
import { createPrisma, ensureDatabase, migrate } from "@transporter/db";
import { closeRedis, createRedis, JobProducer, logConnectionOutages, observeQueueDepths, unlessRedisGone } from "@transporter/queue";
import { createManagedStore } from "@transporter/storage";
import { createLogger, type RunningService } from "@transporter/telemetry";
import { buildApp, type GatewayApp } from "./app.js";
import type { GatewayDeps } from "./deps.js";
import { ensureOperatorKey } from "./operator-key.js";

export { buildApp, type GatewayApp } from "./app.js";
export type { GatewayDeps } from "./deps.js";
export { Problem } from "./problem.js";
export { createOperatorKey, ensureOperatorKey } from "./operator-key.js";
export { generateApiKey } from "./api-key.js";

export interface RunningGateway extends RunningService {
  app: GatewayApp;
  url: string;
}

/** Build the gateway's dependencies from config (unless given), listen, and return a stopper. */
export async function start(config: Config, overrides: Partial<GatewayDeps> = {}): Promise<RunningGateway> {
  if (config.MIGRATE_ON_START) {
    await ensureDatabase(config.DATABASE_URL);
    await migrate(config.DATABASE_URL);
  }
  const prisma = overrides.prisma ?? createPrisma(config.DATABASE_URL, { poolSize: config.DATABASE_POOL_SIZE });
  const logger = overrides.logger ?? createLogger({ name: "gateway", level: config.LOG_LEVEL });
  const redis = overrides.redis ?? createRedis(config.REDIS_URL);
  if (!overrides.redis) logConnectionOutages(redis, logger, "gateway");
  const queues = overrides.queues ?? new JobProducer(redis, config.REDIS_PREFIX, { attempts: config.JOB_ATTEMPTS, backoffMs: config.JOB_BACKOFF_MS });
  if (config.OPERATOR_API_KEY) await ensureOperatorKey(prisma, config.OPERATOR_API_KEY);
  const app = await buildApp({ ...overrides, config, logger, prisma, redis, queues, keyring: overrides.keyring ?? keyringFromConfig(config), managedStore: overrides.managedStore ?? createManagedStore(config) });
  const url = await app.listen({ host: config.GATEWAY_HOST, port: config.GATEWAY_PORT });
  const stopQueueDepths = observeQueueDepths(queues);
  return {
    app,
    url,
    async stop() {
      stopQueueDepths();
      // Waits for the requests under way; then each connection closes (see buildApp's preClose).
      const closed = app.close();
      if ((await unlessRedisGone(closed, redis)) === "gone") {
        // Requests waiting on Redis (the rate limit, an enqueue) would wait until it is back:
        // ioredis holds their commands while it reconnects. End their connections instead.
        app.server.closeAllConnections();
      }
      await closed;
      if (!overrides.queues) await queues.close();
      // A plain disconnect when Redis is gone: QUIT would wait for it.
      if (!overrides.redis) await closeRedis(redis);
      if (!overrides.prisma) await prisma.$disconnect();
    },
  };
}
