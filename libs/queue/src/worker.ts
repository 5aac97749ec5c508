import { UnrecoverableError, Worker, type Job, type Processor, type WorkerOptions } from "bullmq";
import type { Redis } from "ioredis";
import { foreignStagingKey, jobCatalog, type JobPayload, type QueueName } from "./catalog.js";
import { QuietWhenClosedConnection } from "./bullmq-connection.js";
import { closeWorker, type WorkerCloseOutcome } from "./close.js";
import { bullmqTelemetry } from "./otel.js";

export interface WorkerSettings {
  connection: Redis;
  prefix: string;
  concurrency: number;
  lockDurationMs?: number;
}

/**
 * A BullMQ worker whose close() never waits for a Redis that is gone: graceful while Redis is
 * there, bounded when it is not (see closeWorker); `close(true)` as BullMQ's.
 */
export class QueueWorker extends Worker {
  /** How close() ended, once it has: anything but "closed" cut jobs off. */
  closeOutcome: WorkerCloseOutcome | undefined;
  private readonly redis: Redis;
  private closingGracefully: Promise<void> | undefined;

  constructor(name: string, processor: Processor, opts: WorkerOptions & { connection: Redis }) {
    super(name, processor, opts, QuietWhenClosedConnection);
    this.redis = opts.connection;
  }

  override close(force = false): Promise<void> {
    if (force) return super.close(true);
    // Once: a second call waits for the first (as BullMQ's does), it does not force it.
    this.closingGracefully ??= closeWorker(this, this.redis).then((outcome) => void (this.closeOutcome = outcome));
    return this.closingGracefully;
  }
}

/**
 * A BullMQ worker for one queue of the catalogue with the common settings: concurrency from
 * config, lock duration from the catalogue, stalled jobs retried (a SIGKILLed worker's job is
 * picked up by another), payload validated before the handler sees it.
 */
export function createWorker<Q extends QueueName>(
  name: Q,
  handler: (payload: JobPayload<Q>, job: Job, token: string | undefined) => Promise<unknown>,
  settings: WorkerSettings,
  extra: Partial<Omit<WorkerOptions, "connection">> = {},
): QueueWorker {
  const lockDuration = settings.lockDurationMs ?? jobCatalog[name].lockDurationMs;
  return new QueueWorker(
    name,
    async (job, token) => {
      const parsed = jobCatalog[name].payload.safeParse(job.data);
      // A payload that does not fit the contract will not fit it on a retry either.
      if (!parsed.success) throw new UnrecoverableError(`invalid ${name} job data: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(payload)"} ${i.message}`).join("; ")}`);
      const foreign = foreignStagingKey(parsed.data);
      if (foreign) throw new UnrecoverableError(`invalid ${name} job data: ${foreign}`);
      return handler(parsed.data as JobPayload<Q>, job, token);
    },
    {
      connection: settings.connection,
      prefix: settings.prefix,
      concurrency: settings.concurrency,
      lockDuration,
      // Look for jobs whose worker died at least twice per lock period.
      stalledInterval: Math.min(15_000, Math.max(1000, Math.floor(lockDuration / 2))),
      maxStalledCount: 3,
      telemetry: bullmqTelemetry(),
      ...extra,
    },
  );
}

/**
 * Close workers gracefully on SIGTERM/SIGINT: stop taking jobs and let the ones under way
 * finish (BullMQ `close()` waits for them).
 */
export function closeOnSignals(close: () => Promise<void>): () => void {
  const onSignal = () => {
    void close().finally(() => process.exit(0));
  };
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  return () => {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  };
}
