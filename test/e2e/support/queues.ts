import { Queue } from "bullmq";
import type { QueueName, Redis } from "@transporter/queue";

/**
 * What a test needs to see and steer in the pipeline's BullMQ queues while the workers run in
 * other processes (they share nothing with the test but Redis): registered workers, who holds
 * which job, stalled hand-overs, backlogs, and the queue-wide pause switch operators use too.
 */
export class QueueInspector {
  private readonly queues = new Map<QueueName, Queue>();

  constructor(
    private readonly redis: Redis,
    readonly prefix: string,
  ) {}

  private queue(name: QueueName): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: this.redis, prefix: this.prefix });
      this.queues.set(name, queue);
    }
    return queue;
  }

  /** Worker connections currently registered on a queue (one per worker process and queue). */
  async workerCount(name: QueueName): Promise<number> {
    return this.queue(name).getWorkersCount();
  }

  /**
   * The active jobs of a queue grouped by the worker that holds their lock. A BullMQ lock's value
   * is `<worker id>:<n>`, so jobs locked by one worker process share the part before the last ":".
   */
  async lockHolders(name: QueueName): Promise<Map<string, string[]>> {
    const active = await this.redis.lrange(`${this.prefix}:${name}:active`, 0, -1);
    const holders = new Map<string, string[]>();
    if (active.length === 0) return holders;
    const tokens = await this.redis.mget(...active.map((jobId) => `${this.prefix}:${name}:${jobId}:lock`));
    active.forEach((jobId, i) => {
      const token = tokens[i];
      if (!token) return;
      const worker = token.slice(0, token.lastIndexOf(":"));
      holders.set(worker, [...(holders.get(worker) ?? []), jobId]);
    });
    return holders;
  }

  /**
   * Jobs BullMQ found stalled (their worker stopped renewing the lock, e.g. it was killed) and
   * handed back to the queue, from the queue's event stream.
   */
  async stalledJobIds(name: QueueName): Promise<string[]> {
    const entries = await this.redis.xrange(`${this.prefix}:${name}:events`, "-", "+");
    const ids: string[] = [];
    for (const [, fields] of entries) {
      const event = new Map<string, string>();
      for (let i = 0; i + 1 < fields.length; i += 2) event.set(fields[i] as string, fields[i + 1] as string);
      if (event.get("event") === "stalled" && event.has("jobId")) ids.push(event.get("jobId") as string);
    }
    return ids;
  }

  /** Jobs waiting to be taken (waiting, or held back by a pause). */
  async backlog(name: QueueName): Promise<number> {
    const counts = await this.queue(name).getJobCounts("waiting", "paused", "prioritized");
    return Object.values(counts).reduce((sum, n) => sum + n, 0);
  }

  /** Queue-wide pause: no worker takes a new job of this queue until resume(); jobs under way finish. */
  async pause(name: QueueName): Promise<void> {
    await this.queue(name).pause();
  }

  async resume(name: QueueName): Promise<void> {
    await this.queue(name).resume();
  }

  /** One job's state (`waiting`, `active`, `completed`, `failed`…; `unknown` when there is none). */
  async state(name: QueueName, jobId: string): Promise<string> {
    return this.queue(name).getJobState(jobId);
  }

  async counts(name: QueueName): Promise<Record<string, number>> {
    return this.queue(name).getJobCounts("waiting", "active", "delayed", "completed", "failed", "prioritized");
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }
}
