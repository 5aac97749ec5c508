import { UnrecoverableError, Worker, type Job, type WorkerOptions } from "bullmq";
import type { Redis } from "ioredis";
import { foreignStagingKey, jobCatalog, type JobPayload, type QueueName } from "./catalog.js";
import { bullmqTelemetry } from "./otel.js";

export interface WorkerSettings {
  connection: Redis;
  prefix: string;
  concurrency: number;
  lockDurationMs?: number;
}

/**
 * A BullMQ worker for one queue of the catalogue with the common settings: concurrency from
 * config, lock duration from the catalogue, stalled jobs retried (a SIGKILLed worker's job is
 * picked up by another), payload validated before the handler sees it.
 */
export function createWorker<Q extends QueueName>(
  name: Q,
  handler: (payload: JobPayload<Q>, job: Job) => Promise<unknown>,
  settings: WorkerSettings,
  extra: Partial<WorkerOptions> = {},
): Worker {
  const lockDuration = settings.lockDurationMs ?? jobCatalog[name].lockDurationMs;
  return new Worker(
    name,
    async (job) => {
      const parsed = jobCatalog[name].payload.safeParse(job.data);
      // A payload that does not fit the contract will not fit it on a retry either.
      if (!parsed.success) throw new UnrecoverableError(`invalid ${name} job data: ${parsed.error.issues.map((i) => `${i.path.join(".") || "(payload)"} ${i.message}`).join("; ")}`);
      const foreign = foreignStagingKey(parsed.data);
      if (foreign) throw new UnrecoverableError(`invalid ${name} job data: ${foreign}`);
      return handler(parsed.data as JobPayload<Q>, job);
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
