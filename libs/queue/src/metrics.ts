import { metrics } from "@opentelemetry/api";
import { QUEUE_NAMES } from "./catalog.js";
import type { JobProducer } from "./producer.js";

const STATES = ["waiting", "active", "delayed", "failed", "completed", "prioritized", "waiting-children"] as const;

/**
 * Queue depth per queue and state as an observable gauge: read from Redis each time the
 * metrics are collected (the exporter's interval), so it is sampled periodically with no
 * timer of its own. One process in the fleet is enough to report it (the gateway does).
 */
export function observeQueueDepths(producer: JobProducer): () => void {
  const gauge = metrics.getMeter("transporter-queue").createObservableGauge("transporter.queue.jobs", {
    description: "Jobs per queue and state (waiting, active, delayed, failed…)",
    unit: "{job}",
  });
  const callback = async (result: { observe(value: number, attributes: Record<string, string>): void }) => {
    for (const queue of QUEUE_NAMES) {
      const counts = await producer.queue(queue).getJobCounts(...STATES);
      for (const state of STATES) result.observe(counts[state] ?? 0, { queue, state });
    }
  };
  gauge.addCallback(callback);
  return () => gauge.removeCallback(callback);
}
