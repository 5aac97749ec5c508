import { Queue, type JobsOptions } from "bullmq";
import { injectTraceContext } from "@transporter/telemetry";
import type { Redis } from "ioredis";
import { QuietWhenClosedConnection } from "./bullmq-connection.js";
import { jobCatalog, jobIdFor, type JobInput, type QueueName } from "./catalog.js";
import { bullmqTelemetry } from "./otel.js";

export interface RetryPolicy {
  attempts: number;
  backoffMs: number;
}

/** Exponential backoff with jitter, and bounded history in Redis. */
export function defaultJobOptions(policy: RetryPolicy): JobsOptions {
  return {
    attempts: policy.attempts,
    backoff: { type: "exponential", delay: policy.backoffMs, jitter: 0.5 },
    removeOnComplete: { count: 10_000, age: 7 * 24 * 3600 },
    removeOnFail: { count: 10_000, age: 14 * 24 * 3600 },
  };
}

/**
 * Puts jobs on the pipeline's queues. Every enqueue is awaited by its caller: a failure to
 * enqueue must surface (the scheduler's reconciler covers a crash between commit and enqueue).
 */
export class JobProducer {
  private readonly queues = new Map<QueueName, Queue>();

  constructor(
    private readonly connection: Redis,
    readonly prefix: string,
    private readonly policy: RetryPolicy = { attempts: 5, backoffMs: 2000 },
  ) {}

  /** Whether the Redis connection is up (commands sent now are answered, not queued until it is back). */
  get connected(): boolean {
    return this.connection.status === "ready";
  }

  queue(name: QueueName): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(
        name,
        { connection: this.connection, prefix: this.prefix, defaultJobOptions: defaultJobOptions(this.policy), telemetry: bullmqTelemetry() },
        QuietWhenClosedConnection,
      );
      // A queue re-emits its connection's errors; unheard, BullMQ prints each one. The
      // connection's owner reports them (logConnectionOutages), and the commands they hold up
      // fail or wait on their own.
      queue.on("error", () => undefined);
      this.queues.set(name, queue);
    }
    return queue;
  }

  /** Validate against the catalogue, attach the current trace context, enqueue with jobId = run id + stage. */
  async enqueue<Q extends QueueName>(name: Q, payload: JobInput<Q>, options: JobsOptions = {}): Promise<string> {
    const data = jobCatalog[name].payload.parse({ ...payload, trace: payload.trace ?? injectTraceContext() });
    const jobId = jobIdFor(name, data.runId);
    await this.queue(name).add(name, data, { ...options, jobId });
    return jobId;
  }

  /** Many jobs of one queue in one round trip (the scheduler's tick). */
  async enqueueBulk<Q extends QueueName>(name: Q, payloads: JobInput<Q>[]): Promise<void> {
    if (payloads.length === 0) return;
    const trace = injectTraceContext();
    await this.queue(name).addBulk(
      payloads.map((payload) => {
        const data = jobCatalog[name].payload.parse({ ...payload, trace: payload.trace ?? trace });
        return { name, data, opts: { jobId: jobIdFor(name, data.runId) } };
      }),
    );
  }

  /** Whether a job for this run and stage exists in any state (waiting, active, delayed, completed, failed). */
  async hasJob(name: QueueName, runId: string): Promise<boolean> {
    return (await this.queue(name).getJob(jobIdFor(name, runId))) !== undefined;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }
}
