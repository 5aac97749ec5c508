export { createScheduler, start, type ReconcileResult, type Scheduler, type SchedulerDeps, type TickResult } from "./scheduler.js";
export { CLAIM_DUE_TASKS_SQL, processDueBatch, initializeMissingNextRunAt, type BatchResult, type CreatedRun } from "./tick.js";
export { pendingRunsOlderThan, runsWithoutFetchJob } from "./reconciler.js";
// The gateway calls this on create and enable (schedule and time-zone changes: resumeAfterChange).
export { computeNextRunAt } from "@transporter/schedule";
export { periodicSweeps } from "./sweeps.js";
