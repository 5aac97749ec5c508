import type pg from "pg";
import { owedNotificationOutcome, SETTLE_OWED_NOTIFICATION_SQL, type OwedOutcome } from "@transporter/db";
import { jobIdFor, type JobProducer, type Redis } from "@transporter/queue";
import { traceCarrierOf } from "@transporter/telemetry";
import { execPipeline } from "./pipeline-replies.js";
import type { StuckRecoveryDeps } from "./reconciler.js";

/**
 * The reconciler's pass over the notification outbox (see libs/db notification-outbox.ts): runs
 * that finished owing a notification and still owe it after the grace period.
 */

/** How long an owed notification is queued again after its notify job failed; then it is given up. */
export const OWED_NOTIFICATION_GIVE_UP_MS = 24 * 3600_000;

export type OwedNotification = { id: string; tenantId: string; status: string; notificationDueAt: Date; traceparent: string | null };

/** Runs owing a notification since before `olderThan`, oldest first, one page after the cursor. */
export async function owedNotificationsOlderThan(db: pg.Pool | pg.ClientBase, olderThan: Date, after: { dueAt: Date; id: string } | null, limit: number): Promise<OwedNotification[]> {
  const { rows } = await db.query<OwedNotification>(
    `SELECT id, "tenantId", status, "notificationDueAt", traceparent FROM "Run"
     WHERE "notificationDueAt" IS NOT NULL AND "notificationDueAt" <= $1
       AND ($2::timestamptz IS NULL OR ("notificationDueAt", id) > ($2::timestamptz, $3::uuid))
     ORDER BY "notificationDueAt", id
     LIMIT $4`,
    [olderThan, after?.dueAt ?? null, after?.id ?? null, limit],
  );
  return rows;
}

/** What became of a run's notify job: never queued (or removed), queued, completed, or failed. */
export type NotifyJobState = "missing" | "queued" | "completed" | "failed";

/** The state of each run's notify job, in one pipelined round trip. */
export async function notifyJobStates(redis: Redis, producer: JobProducer, runs: OwedNotification[]): Promise<NotifyJobState[]> {
  if (runs.length === 0) return [];
  const queue = producer.queue("notify");
  const pipeline = redis.pipeline();
  for (const run of runs) {
    const jobId = jobIdFor("notify", run.id);
    pipeline.exists(queue.toKey(jobId));
    pipeline.zscore(queue.toKey("completed"), jobId);
    pipeline.zscore(queue.toKey("failed"), jobId);
  }
  const reply = await execPipeline(pipeline);
  return runs.map((_, n): NotifyJobState => {
    const at = n * 3;
    if (reply(at) === 0) return "missing";
    if (reply(at + 1) !== null) return "completed";
    if (reply(at + 2) !== null) return "failed";
    return "queued";
  });
}

export type OwedNotificationResult = { checked: number; enqueued: number; retried: number; settled: number; abandoned: number };

/** What the pass needs: the stuck-run pass's dependencies (same reconciler). */
export type OwedNotificationDeps = StuckRecoveryDeps;

/**
 * Settles the notifications still owed after the grace period, at most `maxRuns` per pass:
 * - no notify job (its enqueue was lost after the outcome committed): queued, same job id;
 * - the job failed on every attempt (the database out through all of them): retried from the
 *   start, until the notification has been owed for OWED_NOTIFICATION_GIVE_UP_MS, then given up;
 * - the job completed (it handled the run but could not clear the mark): the mark is cleared;
 * - waiting, delayed or active: left alone.
 * Clearing is conditional on the due time read, so nothing a notify job does meanwhile is undone.
 */
export async function recoverOwedNotifications(deps: OwedNotificationDeps, olderThan: Date, options: { pageSize: number; maxRuns: number }): Promise<OwedNotificationResult> {
  const { pool, producer, logger, metrics, now } = deps;
  const result: OwedNotificationResult = { checked: 0, enqueued: 0, retried: 0, settled: 0, abandoned: 0 };
  const settle = async (run: OwedNotification) => {
    const { rowCount } = await pool.query(SETTLE_OWED_NOTIFICATION_SQL, [run.id, run.notificationDueAt]);
    return (rowCount ?? 0) > 0;
  };
  let cursor: { dueAt: Date; id: string } | null = null;
  while (result.checked < options.maxRuns) {
    const runs = await owedNotificationsOlderThan(pool, olderThan, cursor, Math.min(options.pageSize, options.maxRuns - result.checked));
    result.checked += runs.length;
    const states = await notifyJobStates(deps.redis, producer, runs);
    const lost: Array<{ run: OwedNotification; outcome: OwedOutcome }> = [];
    for (const [i, run] of runs.entries()) {
      const state = states[i]!;
      const outcome = owedNotificationOutcome(run.status);
      if (!outcome || state === "completed") {
        // Handled (its job completed, the mark was not cleared), or not a finished run (which
        // owes nothing): the mark is cleared, nothing sent.
        if (await settle(run)) result.settled += 1;
      } else if (state === "missing") lost.push({ run, outcome });
      else if (state === "failed") {
        if (now().getTime() - run.notificationDueAt.getTime() > OWED_NOTIFICATION_GIVE_UP_MS) {
          if (await settle(run)) {
            result.abandoned += 1;
            metrics.owedNotifications.add(1, { action: "abandoned" });
            logger.error({ runId: run.id, tenantId: run.tenantId, dueAt: run.notificationDueAt }, "gave up a run's notification: its notify job kept failing for a day");
          }
          continue;
        }
        const job = await producer.queue("notify").getJob(jobIdFor("notify", run.id));
        // Moves it back to waiting with its attempts counted from zero; a job no longer failed is left.
        if (job && (await job.retry("failed", { resetAttemptsMade: true }).then(() => true, () => false))) {
          result.retried += 1;
          metrics.owedNotifications.add(1, { action: "retried" });
        }
      }
    }
    if (lost.length > 0) {
      // The job id is the run's: a notify job queued meanwhile (another replica, a stage retry) stays the one job.
      await producer.enqueueBulk(
        "notify",
        lost.map(({ run, outcome }) => ({ runId: run.id, tenantId: run.tenantId, trace: traceCarrierOf(run.traceparent), outcome })),
      );
      result.enqueued += lost.length;
      metrics.owedNotifications.add(lost.length, { action: "enqueued" });
      logger.warn({ runIds: lost.slice(0, 20).map(({ run }) => run.id), count: lost.length }, "reconciler queued notifications still owed whose notify job was missing");
    }
    const last = runs.at(-1);
    if (runs.length < options.pageSize || !last) break;
    cursor = { dueAt: last.notificationDueAt, id: last.id };
  }
  return result;
}
