import type { Db } from "./client.js";
import { sqlExecute } from "./pipeline-sql.js";

/**
 * The notification outbox. A run that finishes (SUCCEEDED or FAILED) for a task with notification
 * settings owes a notification: `Run.notificationDueAt` is set in the same write as the outcome,
 * and the notify job clears it once it has handled the run (sent, or failed and alerted). The job
 * is queued right after the outcome commits; when that enqueue is lost (Redis down through the
 * stage job's last attempt), the scheduler's reconciler finds the notification still owed and
 * queues it. A notification already handled is never queued again, however late a duplicate job
 * or a retry of the finishing stage comes.
 */

/** Whether a task's notification settings ask for anything: tasks without them owe no notification. */
export function hasNotificationSettings(notifications: unknown): boolean {
  return notifications !== null && typeof notifications === "object" && !Array.isArray(notifications) && Object.keys(notifications).length > 0;
}

export type OwedOutcome = "succeeded" | "failed";

/** The outcome a finished run's notification reports, or null for a status that notifies nothing. */
export function owedNotificationOutcome(status: string): OwedOutcome | null {
  return status === "SUCCEEDED" ? "succeeded" : status === "FAILED" ? "failed" : null;
}

/**
 * Marks a run's owed notification as handled ($1 run id, $2 the due time read). Conditional on
 * that due time, so a mark set since is kept. Shared by the notify job and the reconciler.
 */
export const SETTLE_OWED_NOTIFICATION_SQL = `UPDATE "Run" SET "notificationDueAt" = NULL WHERE id = $1::uuid AND "notificationDueAt" = $2::timestamptz`;

/** `SETTLE_OWED_NOTIFICATION_SQL` through the application's client; true when it cleared one. */
export async function settleOwedNotification(db: Db, runId: string, dueAt: Date): Promise<boolean> {
  return (await sqlExecute(db, SETTLE_OWED_NOTIFICATION_SQL, [runId, dueAt.toISOString()])) > 0;
}
