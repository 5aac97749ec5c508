import { metrics } from "@transporter/telemetry";

/** The scheduler's instruments (no-ops until the telemetry SDK is started). */
export function createSchedulerMetrics() {
  const meter = metrics.getMeter("transporter-scheduler");
  return {
    dueTasks: meter.createHistogram("scheduler.tick.due_tasks", {
      description: "Due tasks claimed by one tick",
      unit: "{task}",
      advice: { explicitBucketBoundaries: [0, 1, 10, 100, 1000, 10_000, 100_000] },
    }),
    runsCreated: meter.createCounter("scheduler.runs.created", {
      description: "Scheduled runs written, by status (PENDING to run, SKIPPED beyond the catch-up limit)",
      unit: "{run}",
    }),
    lag: meter.createHistogram("scheduler.lag", {
      description: "Time from a run's due time (window end + delay) to its enqueue",
      unit: "ms",
      advice: { explicitBucketBoundaries: [100, 500, 1000, 5000, 10_000, 30_000, 60_000, 300_000, 3_600_000, 86_400_000] },
    }),
    reenqueued: meter.createCounter("scheduler.reconciler.reenqueued", {
      description: "PENDING runs whose fetch job was missing and was enqueued again",
      unit: "{run}",
    }),
    stuckRuns: meter.createCounter("scheduler.reconciler.stuck_runs", {
      description: "Runs in a stage status whose stage job was missing (action=reenqueued) or had failed without failing the run (action=failed), or queued runs that may no longer start (action=skipped), by stage",
      unit: "{run}",
    }),
    owedNotifications: meter.createCounter("scheduler.reconciler.owed_notifications", {
      description: "Notifications still owed after the grace period: queued again (action=enqueued), failed job retried (action=retried), given up after a day (action=abandoned)",
      unit: "{notification}",
    }),
    /** The pipeline's own failure counter (the stages count theirs), so dashboards see every FAILED run. */
    runsFailed: metrics.getMeter("transporter-pipeline").createCounter("transporter.runs.failed", { description: "Runs that ended FAILED, by stage and reason", unit: "{run}" }),
    /** Likewise for queued runs the reconciler ends SKIPPED (the fetch stage counts the ones it skips). */
    runsSkipped: metrics.getMeter("transporter-pipeline").createCounter("transporter.runs.skipped", { description: "Queued runs not started: their task was deleted or disabled, or the account disabled, meanwhile", unit: "{run}" }),
    tickErrors: meter.createCounter("scheduler.errors", { description: "Failed ticks, reconciler passes and sweeps", unit: "{error}" }),
  };
}

export type SchedulerMetrics = ReturnType<typeof createSchedulerMetrics>;
