import pg from "pg";
import type { Config } from "@transporter/config";
import { idleConnectionClosed } from "@transporter/db";
import { closeRedis, createRedis, JobProducer, logConnectionOutages, unlessRedisGone, type Redis } from "@transporter/queue";
import { createLogger, startLinkedTrace, startSpan, trace, traceCarrierOf, type Logger } from "@transporter/telemetry";
import { createSchedulerMetrics, type SchedulerMetrics } from "./metrics.js";
import { pendingRunsOlderThan, recoverStuckRuns, runsWithoutFetchJob, type StuckRecoveryResult } from "./reconciler.js";
import { recoverOwedNotifications, type OwedNotificationResult } from "./owed-notifications.js";
import { initializeMissingNextRunAt, processDueBatch, type CreatedRun } from "./tick.js";

export interface SchedulerDeps {
  /** The clock; tests pass a simulated one. Every "now" the scheduler uses comes from here. */
  now?: () => Date;
  /** Retention sweeps (staging, managed storage), called every RETENTION_SWEEP_INTERVAL_MS. */
  sweeps?: Array<() => Promise<void>>;
  /** PostgreSQL pool; created from DATABASE_URL (and closed on stop) when absent. */
  pool?: pg.Pool;
  /** Redis connection; created from REDIS_URL (and closed on stop) when absent. */
  redis?: Redis;
  /** Job producer; created over `redis` with REDIS_PREFIX when absent. */
  producer?: JobProducer;
  logger?: Logger;
}

export type TickResult = { due: number; created: number; skipped: number; enqueued: number; unschedulable: number };
/**
 * `checked`/`reenqueued`: PENDING runs; `stuck`: runs in a stage status (see recoverStuckRuns);
 * `notifications`: finished runs still owing their notification (see recoverOwedNotifications).
 */
export type ReconcileResult = { checked: number; reenqueued: number; initialized: number; stuck: StuckRecoveryResult; notifications: OwedNotificationResult };

export interface Scheduler {
  /** Claim due tasks batch by batch, write their runs, enqueue them. */
  tick(): Promise<TickResult>;
  /**
   * Enqueue again PENDING runs whose fetch job is missing; recover runs stuck in a stage status
   * (job lost: enqueued again; job failed outside the stage: run FAILED); queue the
   * notifications finished runs still owe whose job is missing; give enabled tasks without
   * nextRunAt one.
   */
  reconcile(): Promise<ReconcileResult>;
  /** Run the retention sweeps once. */
  sweep(): Promise<void>;
  /** Close what this scheduler opened itself. */
  close(): Promise<void>;
  readonly producer: JobProducer;
  readonly pool: pg.Pool;
  /** The Redis connection its jobs go through. */
  readonly redis: Redis;
  readonly metrics: SchedulerMetrics;
}

const RECONCILE_PAGE = 1000;
/** Runs in a stage status looked at per reconciler pass (the rest wait for the next pass). */
const STUCK_RUNS_PER_PASS = 10_000;

/** The scheduler's operations without timers: `start` drives them; tests call them directly. */
export function createScheduler(config: Config, deps: SchedulerDeps = {}): Scheduler {
  const now = deps.now ?? (() => new Date());
  const logger = deps.logger ?? createLogger({ name: "scheduler", level: config.LOG_LEVEL });
  const ownPool = !deps.pool;
  const pool = deps.pool ?? new pg.Pool({ connectionString: config.DATABASE_URL, max: config.DATABASE_POOL_SIZE });
  // An idle connection the server drops (a restart, a failover) is an 'error' on the pool, which
  // would crash the process unheard; the pool opens a new one when next asked.
  if (ownPool) pool.on("error", idleConnectionClosed(logger));
  const ownRedis = !deps.redis;
  const redis = deps.redis ?? createRedis(config.REDIS_URL);
  if (ownRedis) logConnectionOutages(redis, logger, "scheduler");
  const ownProducer = !deps.producer;
  const producer = deps.producer ?? new JobProducer(redis, config.REDIS_PREFIX, { attempts: config.JOB_ATTEMPTS, backoffMs: config.JOB_BACKOFF_MS });
  const metrics: SchedulerMetrics = createSchedulerMetrics();
  const tracer = trace.getTracer("transporter-scheduler");

  async function markEnqueued(ids: string[], at: Date): Promise<void> {
    await pool.query(`UPDATE "Run" SET "enqueuedAt" = $2 WHERE id = ANY($1::uuid[]) AND "enqueuedAt" IS NULL`, [ids, at]);
  }

  async function enqueue(runs: CreatedRun[]): Promise<void> {
    await producer.enqueueBulk("fetch", runs.map((run) => ({ runId: run.id, tenantId: run.tenantId, trace: traceCarrierOf(run.traceparent) })));
    const at = now();
    for (const run of runs) metrics.lag.record(Math.max(0, at.getTime() - run.scheduledFor.getTime()));
  }

  async function tick(): Promise<TickResult> {
    return startSpan(tracer, "scheduler.tick", {}, async (span) => {
      const at = now();
      // Each run gets a trace of its own, linked to this tick's span (see startLinkedTrace).
      const traceparentFor = (run: { id: string; tenantId: string; taskId: string }) =>
        startLinkedTrace(tracer, "scheduled run", { "transporter.run_id": run.id, "transporter.tenant_id": run.tenantId, "transporter.task_id": run.taskId }).traceparent ?? null;
      const total: TickResult = { due: 0, created: 0, skipped: 0, enqueued: 0, unschedulable: 0 };
      // Batches are claimed and committed one after another while the previous batch's jobs go
      // to Redis: the database and Redis work overlap. Jobs are enqueued in batch order, so the
      // oldest windows are queued first; at most two batches wait for Redis at any time.
      let redisLane: Promise<void> = Promise.resolve();
      let waiting = 0;
      let enqueueError: unknown;
      const bookkeeping: Promise<void>[] = [];
      for (;;) {
        if (enqueueError) break;
        const batch = await inTransaction((client) =>
          processDueBatch(client, {
            now: at,
            batchSize: config.SCHEDULER_BATCH_SIZE,
            catchUpDays: config.SCHEDULER_CATCH_UP_DAYS,
            traceparentFor,
          }),
        );
        total.due += batch.claimed;
        total.created += batch.pending.length;
        total.skipped += batch.skipped;
        total.unschedulable += batch.unschedulable.length;
        for (const { taskId, reason } of batch.unschedulable) logger.warn({ taskId, reason }, "task cannot be scheduled; nextRunAt cleared");
        if (batch.pending.length > 0) metrics.runsCreated.add(batch.pending.length, { status: "PENDING" });
        if (batch.skipped > 0) metrics.runsCreated.add(batch.skipped, { status: "SKIPPED" });
        if (batch.pending.length > 0) {
          // After commit: a crash before the enqueue leaves PENDING runs without jobs, which the
          // reconciler enqueues.
          const runs = batch.pending;
          waiting += 1;
          redisLane = redisLane.then(async () => {
            try {
              if (enqueueError) return;
              await enqueue(runs);
              total.enqueued += runs.length;
              bookkeeping.push(
                markEnqueued(runs.map((r) => r.id), now()).catch((error: unknown) => logger.warn({ err: error }, "could not record enqueuedAt")),
              );
            } catch (error) {
              enqueueError = error;
            } finally {
              waiting -= 1;
            }
          });
          if (waiting >= 2) await redisLane;
        }
        if (batch.claimed < config.SCHEDULER_BATCH_SIZE) break;
      }
      await redisLane;
      await Promise.all(bookkeeping);
      if (enqueueError) throw enqueueError;
      metrics.dueTasks.record(total.due);
      span.setAttributes({ "scheduler.due_tasks": total.due, "scheduler.runs_created": total.created });
      if (total.due > 0) logger.info(total, "scheduler tick");
      return total;
    });
  }

  async function inTransaction<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      const result = await work(client);
      await client.query("COMMIT");
      return result;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async function reconcile(): Promise<ReconcileResult> {
    const at = now();
    const result: ReconcileResult = {
      checked: 0, reenqueued: 0, initialized: 0,
      stuck: { checked: 0, reenqueued: 0, failed: 0, skipped: 0 },
      notifications: { checked: 0, enqueued: 0, retried: 0, settled: 0, abandoned: 0 },
    };
    const olderThan = new Date(at.getTime() - config.RECONCILER_GRACE_MS);
    let cursor: { createdAt: Date; id: string } | null = null;
    for (;;) {
      const runs = await pendingRunsOlderThan(pool, olderThan, cursor, RECONCILE_PAGE);
      result.checked += runs.length;
      const missing = await runsWithoutFetchJob(redis, producer, runs);
      // A tick whose enqueue reached Redis but whose reply was lost never recorded it: the job is
      // there, so the run was enqueued, (about) when it was created.
      const queued = runs.filter((run) => !missing.includes(run)).map((run) => run.id);
      if (queued.length > 0) await pool.query(`UPDATE "Run" SET "enqueuedAt" = "createdAt" WHERE id = ANY($1::uuid[]) AND "enqueuedAt" IS NULL`, [queued]);
      if (missing.length > 0) {
        // The job id is the run's: if another replica re-enqueued it meanwhile, BullMQ keeps the one job.
        await producer.enqueueBulk(
          "fetch",
          missing.map((run) => {
            return { runId: run.id, tenantId: run.tenantId, trace: traceCarrierOf(run.traceparent) };
          }),
        );
        await pool.query(`UPDATE "Run" SET "enqueuedAt" = $2 WHERE id = ANY($1::uuid[])`, [missing.map((r) => r.id), now()]);
        metrics.reenqueued.add(missing.length);
        result.reenqueued += missing.length;
        logger.warn({ runIds: missing.slice(0, 20).map((r) => r.id), count: missing.length }, "reconciler enqueued runs whose fetch job was missing");
      }
      const last = runs.at(-1);
      if (runs.length < RECONCILE_PAGE || !last) break;
      cursor = { createdAt: last.createdAt, id: last.id };
    }
    result.stuck = await recoverStuckRuns({ pool, redis, producer, logger, metrics, now }, olderThan, { pageSize: RECONCILE_PAGE, maxRuns: STUCK_RUNS_PER_PASS });
    result.notifications = await recoverOwedNotifications({ pool, redis, producer, logger, metrics, now }, olderThan, { pageSize: RECONCILE_PAGE, maxRuns: STUCK_RUNS_PER_PASS });
    const client = await pool.connect();
    try {
      result.initialized = await initializeMissingNextRunAt(client, at);
    } finally {
      client.release();
    }
    return result;
  }

  async function sweep(): Promise<void> {
    for (const [i, run] of (deps.sweeps ?? []).entries()) {
      try {
        await run();
      } catch (error) {
        metrics.tickErrors.add(1, { operation: "sweep" });
        logger.error({ err: error, sweep: i }, "retention sweep failed");
      }
    }
  }

  async function close(): Promise<void> {
    if (ownProducer) await producer.close();
    // A plain disconnect while Redis is gone: QUIT would wait for it.
    if (ownRedis) await closeRedis(redis);
    if (ownPool) await pool.end();
  }

  return { tick, reconcile, sweep, close, producer, pool, redis, metrics };
}

/**
 * Start the scheduler: a tick every SCHEDULER_TICK_MS, a reconciler pass every
 * RECONCILER_INTERVAL_MS, the retention sweeps every RETENTION_SWEEP_INTERVAL_MS. Each loop
 * waits for its previous round to finish, so rounds never overlap within a process; replicas
 * coordinate through the database.
 */
export async function start(config: Config, deps: SchedulerDeps = {}): Promise<{ stop(): Promise<void>; scheduler: Scheduler }> {
  const logger = deps.logger ?? createLogger({ name: "scheduler", level: config.LOG_LEVEL });
  const scheduler = createScheduler(config, { ...deps, logger });
  const { metrics } = scheduler;
  let stopped = false;
  const timers = new Set<NodeJS.Timeout>();
  const running = new Set<Promise<unknown>>();

  function loop(name: string, intervalMs: number, run: () => Promise<unknown>, firstDelayMs: number): void {
    const schedule = (delay: number) => {
      if (stopped) return;
      const timer = setTimeout(() => {
        timers.delete(timer);
        const round = run()
          .catch((error: unknown) => {
            metrics.tickErrors.add(1, { operation: name });
            logger.error({ err: error }, `${name} failed`);
          })
          .finally(() => {
            running.delete(round);
            schedule(intervalMs);
          });
        running.add(round);
      }, delay);
      timers.add(timer);
    };
    schedule(firstDelayMs);
  }

  loop("tick", config.SCHEDULER_TICK_MS, () => scheduler.tick(), 0);
  loop("reconcile", config.RECONCILER_INTERVAL_MS, () => scheduler.reconcile(), Math.min(config.RECONCILER_INTERVAL_MS, 5_000));
  // The first sweep soon after start (spread over replicas started together), not one whole
  // interval later: replicas restarted more often than that (rollouts) would never sweep.
  const firstSweepMs = Math.min(config.RETENTION_SWEEP_INTERVAL_MS, 30_000 + Math.floor(Math.random() * 30_000));
  if ((deps.sweeps ?? []).length > 0) loop("sweep", config.RETENTION_SWEEP_INTERVAL_MS, () => scheduler.sweep(), firstSweepMs);
  logger.info({ tickMs: config.SCHEDULER_TICK_MS, batchSize: config.SCHEDULER_BATCH_SIZE, catchUpDays: config.SCHEDULER_CATCH_UP_DAYS }, "scheduler started");

  return {
    scheduler,
    async stop() {
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      // A round waiting on a Redis that is gone would wait until it is back. Its runs are
      // committed; the reconciler of the next scheduler to run enqueues their jobs.
      if ((await unlessRedisGone(Promise.allSettled([...running]), scheduler.redis)) === "gone") logger.warn("stopping without the round under way: Redis is gone");
      await scheduler.close();
      logger.info("scheduler stopped");
    },
  };
}
