import type { Config } from "@transporter/config";
import { keyringFromConfig } from "@transporter/crypto";
import { createPrisma, ensureDatabase, idleConnectionClosed, migrate, type Db } from "@transporter/db";
import { closeRedis, createRedis, JobProducer, logConnectionOutages, type Redis } from "@transporter/queue";
import { createDestinationRegistry, createManagedStore, createStagingStore, type StagingStore } from "@transporter/storage";
import { createLogger, type Logger } from "@transporter/telemetry";
import { start as startDeliverer } from "@transporter/deliverer";
import { start as startEncryptor } from "@transporter/encryptor";
import { start as startFetcher } from "@transporter/fetcher";
import { start as startGateway, type RunningGateway } from "@transporter/gateway";
import { periodicSweeps, start as startScheduler } from "@transporter/scheduler";
import { start as startTransformer } from "@transporter/transformer";

export const SERVICE_NAMES = ["gateway", "scheduler", "fetcher", "transformer", "encryptor", "deliverer"] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

export interface System {
  gateway: RunningGateway;
  prisma: Db;
  redis: Redis;
  staging: StagingStore;
  managed: StagingStore;
  queues: JobProducer;
  stop(): Promise<void>;
}

/**
 * All six services in one process, sharing one database pool, one Redis connection and one
 * staging store: `npm start` on a single machine, the demo, and the in-process end-to-end
 * tests. Migrations run first. Each service is the same code that runs alone in production.
 */
export async function startSystem(config: Config, options: { now?: () => Date; logger?: Logger } = {}): Promise<System> {
  await ensureDatabase(config.DATABASE_URL);
  await migrate(config.DATABASE_URL);
  const logger = options.logger ?? createLogger({ name: "transporter", level: config.LOG_LEVEL });
  const prisma = createPrisma(config.DATABASE_URL, { poolSize: config.DATABASE_POOL_SIZE, onIdleError: idleConnectionClosed(logger) });
  const redis = createRedis(config.REDIS_URL);
  logConnectionOutages(redis, logger, "transporter");
  const keyring = keyringFromConfig(config);
  const staging = createStagingStore(config);
  const managed = createManagedStore(config);
  const queues = new JobProducer(redis, config.REDIS_PREFIX, { attempts: config.JOB_ATTEMPTS, backoffMs: config.JOB_BACKOFF_MS });
  const destinations = createDestinationRegistry({ managedStore: managed, allowInsecureEndpoints: config.ALLOW_INSECURE_ENDPOINTS });
  const shared = { prisma, redis, keyring, staging, logger, producer: queues, ...(options.now ? { now: options.now } : {}) };

  const started: Array<{ stop(): Promise<void> }> = [];
  /**
   * Every service's stop begins at once: the scheduler's loops end and every worker pauses before
   * anything is awaited, so no run is scheduled and no job begins once stopping has begun (one
   * service at a time, those not yet stopping kept scheduling runs and taking jobs while the
   * others waited). Then the gateway's requests and the jobs under way are waited for (those
   * still running at the end of a runServiceMain stop's grace period handed back), and only
   * then do the shared connections close.
   */
  async function stopAll(): Promise<void> {
    await Promise.all(started.map((service) => service.stop().catch(() => undefined)));
    await queues.close();
    // A plain disconnect when Redis is gone: QUIT would wait for it.
    await closeRedis(redis);
    await prisma.$disconnect();
  }
  try {
    const now = options.now ?? (() => new Date());
    const sweeps = periodicSweeps({ prisma, staging, managed, config, logger, now });
    started.push(await startScheduler(config, { ...shared, sweeps } as never));
    started.push(await startFetcher(config, shared as never));
    started.push(await startTransformer(config, shared as never));
    started.push(await startEncryptor(config, shared as never));
    started.push(await startDeliverer(config, { ...shared, registry: destinations } as never));
    const gateway = await startGateway(config, { ...shared, queues, managedStore: managed, destinations, logger: logger.child({ component: "gateway" }) } as never);
    started.push(gateway);
    return {
      gateway, prisma, redis, staging, managed, queues,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
