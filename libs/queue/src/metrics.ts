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
 * every other metric back. Redis not connected is not asked at all, nor while the last read is
 * still unanswered: the commands would only pile up until it is back.
 *
 * Exporters keep showing the last depths observed (cumulative gauges are not withdrawn), so
 * `transporter.queue.depth.age` says how old they are: seconds since they were last read.
 * Alert on it, and do not trust the depths while it grows.
 */
export function observeQueueDepths(producer: JobProducer, options: QueueDepthOptions = {}): () => void {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const meter = metrics.getMeter("transporter-queue");
  const gauge = meter.createObservableGauge("transporter.queue.jobs", {
    description: "Jobs per queue and state (waiting, active, delayed, failed…)",
    unit: "{job}",
  });
  const age = meter.createObservableGauge("transporter.queue.depth.age", {
    description: "Seconds since the queue depths (transporter.queue.jobs) were last read from Redis",
    unit: "s",
  });
  const started = Date.now();
  let lastRead: number | undefined;
  let reading: Promise<unknown> | undefined;
  const callback = async (result: { observe(value: number, attributes: Record<string, string>): void }) => {
    if (!producer.connected || reading) return;
    const read = Promise.all(QUEUE_NAMES.map(async (queue) => ({ queue, counts: await producer.queue(queue).getJobCounts(...STATES) })));
    reading = read.catch(() => undefined).finally(() => (reading = undefined));
    const counts = await withinTime(read, timeoutMs);
    if (counts) lastRead = Date.now();
    for (const { queue, counts: byState } of counts ?? []) {
      for (const state of STATES) result.observe(byState[state] ?? 0, { queue, state });
    }
  };
  const ageCallback = (result: { observe(value: number): void }) => result.observe((Date.now() - (lastRead ?? started)) / 1000);
  gauge.addCallback(callback);
  age.addCallback(ageCallback);
  return () => {
    gauge.removeCallback(callback);
    age.removeCallback(ageCallback);
  };
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
