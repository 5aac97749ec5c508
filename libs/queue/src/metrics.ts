import { metrics } from "@opentelemetry/api";
import { QUEUE_NAMES } from "./catalog.js";
import type { JobProducer } from "./producer.js";

const STATES = ["waiting", "active", "delayed", "failed", "completed", "prioritized", "waiting-children"] as const;

/** How long one collection may wait for Redis before it reports no depths this time. */
const DEFAULT_TIMEOUT_MS = 2_000;

export interface QueueDepthOptions {
  /** Longest wait for Redis per collection (default 2 s). */
  timeoutMs?: number;
}

/**
 * Queue depth per queue and state as an observable gauge: read from Redis each time the
 * metrics are collected (the exporter's interval), so it is sampled periodically with no
 * timer of its own. One process in the fleet is enough to report it (the gateway does).
 *
 * A collection waits for this callback, and a scrape of /metrics for the collection: while
 * Redis is down or not answering, this collection observes no new depths instead of holding
 * every other metric back. Redis not connected is not asked at all: the commands would only
 * queue up until it is back.
 */
export function observeQueueDepths(producer: JobProducer, options: QueueDepthOptions = {}): () => void {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const gauge = metrics.getMeter("transporter-queue").createObservableGauge("transporter.queue.jobs", {
    description: "Jobs per queue and state (waiting, active, delayed, failed…)",
    unit: "{job}",
  });
  const callback = async (result: { observe(value: number, attributes: Record<string, string>): void }) => {
    if (!producer.connected) return;
    const counts = await withinTime(
      Promise.all(QUEUE_NAMES.map(async (queue) => ({ queue, counts: await producer.queue(queue).getJobCounts(...STATES) }))),
      timeoutMs,
    );
    for (const { queue, counts: byState } of counts ?? []) {
      for (const state of STATES) result.observe(byState[state] ?? 0, { queue, state });
    }
  };
  gauge.addCallback(callback);
  return () => gauge.removeCallback(callback);
}

/** The promise's value, or undefined when it takes longer than `ms` or fails. */
async function withinTime<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
    timer.unref();
  });
  try {
    return await Promise.race([promise.catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}
