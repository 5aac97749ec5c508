export { jobCatalog, jobIdFor, QUEUE_NAMES, STAGES, type QueueName, type Stage, type JobPayload, type JobInput } from "./catalog.js";
export { PermanentError, isPermanent, errorCodeOf } from "./errors.js";
export { createRedis, type Redis } from "./connection.js";
export { JobProducer, defaultJobOptions, type RetryPolicy } from "./producer.js";
export { createWorker, closeOnSignals, type WorkerSettings } from "./worker.js";
export { createStageWorker, type RunFields, type StageContext, type StageOutput, type StageWorkerOptions } from "./stage.js";
export { testRedisPrefix } from "./testing.js";
export { observeQueueDepths, type QueueDepthOptions } from "./metrics.js";
export { bullmqTelemetry } from "./otel.js";
