import { BullMQOtel } from "bullmq-otel";

/**
 * BullMQ's own OpenTelemetry integration: spans for enqueue and processing, linked across
 * processes through the job's metadata. Our stage spans additionally continue the run's trace
 * from the payload, so one trace covers the API call or tick and every stage.
 */
let shared: BullMQOtel | undefined;
export function bullmqTelemetry(): BullMQOtel {
  shared ??= new BullMQOtel("transporter-queue");
  return shared;
}
