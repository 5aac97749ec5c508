import type { Config } from "@transporter/config";
import { keyringFromConfig } from "@transporter/crypto";
import type { Keyring } from "@transporter/crypto";
import { createPrisma, idleConnectionClosed } from "@transporter/db";
import type { Db } from "@transporter/db";
import { closeRedis, createRedis, createStageWorker, createWorker, logConnectionOutages, logWorkerErrors } from "@transporter/queue";
import type { JobProducer, Redis } from "@transporter/queue";
import { createDestinationRegistry, createMailer, createManagedStore, createStagingStore } from "@transporter/storage";
import type { DestinationRegistry, Mailer, StagingStore } from "@transporter/storage";
import { createLogger, startSpan, trace, withTraceContext } from "@transporter/telemetry";
import type { Logger } from "@transporter/telemetry";
import { createDeliverHandler } from "./deliver.js";
import { createNotifyHandler } from "./notify.js";

export { createDeliverHandler, destinationCredentialsContext, type DeliverDeps } from "./deliver.js";
export { createNotifyHandler, runSummary, webhookSecretContext, type NotifyDeps, type NotifyOutcome } from "./notify.js";

export interface DelivererDeps {
  prisma?: Db;
  redis?: Redis;
  keyring?: Keyring;
  staging?: StagingStore;
  registry?: DestinationRegistry;
  mailer?: Mailer;
  producer?: JobProducer;
  logger?: Logger;
  now?: () => Date;
}

/**
 * The deliverer: a `deliver` stage worker (encrypted file → destination) and a `notify`
 * worker (webhook and email after each finished run). Anything not passed in is built from
 * the config and closed again by stop().
 */
export async function start(config: Config, deps: DelivererDeps = {}): Promise<{ stop(): Promise<void> }> {
  const owned: Array<() => Promise<void>> = [];
  const logger = deps.logger ?? createLogger({ name: "deliverer", level: config.LOG_LEVEL });
  const prisma = deps.prisma ?? createPrisma(config.DATABASE_URL, { poolSize: config.DATABASE_POOL_SIZE, onIdleError: idleConnectionClosed(logger) });
  if (!deps.prisma) owned.push(() => prisma.$disconnect());
  const redis = deps.redis ?? createRedis(config.REDIS_URL);
  // A plain disconnect when Redis is gone: QUIT would wait for it.
  if (!deps.redis) {
    logConnectionOutages(redis, logger, "deliverer");
    owned.push(() => closeRedis(redis));
  }
  const keyring = deps.keyring ?? keyringFromConfig(config);
  const staging = deps.staging ?? createStagingStore(config);
  const registry = deps.registry ?? createDestinationRegistry({ managedStore: createManagedStore(config), allowInsecureEndpoints: config.ALLOW_INSECURE_ENDPOINTS });
  const mailer = deps.mailer ?? (config.SMTP_URL ? createMailer({ smtpUrl: config.SMTP_URL, from: config.SMTP_FROM }) : undefined);
  if (mailer && !deps.mailer) owned.push(async () => mailer.close());

  const deliverWorker = createStageWorker({
    stage: "deliver",
    config,
    prisma,
    redis,
    logger,
    // Two attempts writing one file at once (a job taken over while its worker still delivers)
    // could interleave their writes to the same temporary file on SFTP.
    exclusive: true,
    ...(deps.producer ? { producer: deps.producer } : {}),
    handler: createDeliverHandler({ config, prisma, keyring, staging, registry, ...(deps.now ? { now: deps.now } : {}) }),
  });
  const notify = createNotifyHandler({ config, prisma, keyring, logger: logger.child({ stage: "notify" }), ...(mailer ? { mailer } : {}) });
  const tracer = trace.getTracer("transporter-pipeline");
  // In the run's trace (the payload carries it), like the stages: the webhook call and its logs
  // belong to the run, whoever queued the notification (a stage, or the reconciler).
  const notifyWorker = createWorker("notify", (payload) => withTraceContext(payload.trace, () => startSpan(tracer, "notify run", { "transporter.run_id": payload.runId, "transporter.tenant_id": payload.tenantId }, () => notify(payload))), {
    connection: redis,
    prefix: config.REDIS_PREFIX,
    concurrency: config.CONCURRENCY_NOTIFY,
    lockDurationMs: config.JOB_LOCK_MS,
  });
  logWorkerErrors(notifyWorker, logger, "notify worker error");

  return {
    async stop() {
      // Both finish the jobs under way at once: the shutdown grace period is for the slower one.
      await Promise.all([deliverWorker.close(), notifyWorker.close()]);
      for (const close of owned.reverse()) await close();
    },
  };
}
